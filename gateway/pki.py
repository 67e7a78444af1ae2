"""A development PKI: a root CA, an intermediate CA, agency certificates and CRLs, so tests, the
demo and admins trying the gateway out have real keys in the shape real ones come in (national
root → issuing CA → agency); the folder `edxml-gateway pki` keeps them in is gateway.pki_folder's.
Production agencies use certificates from their CA (e.g. the government CA); the only
requirement the gateway puts on them is documented in :mod:`gateway.edxml.certs` (agency code
in Subject organizationIdentifier).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.edxml import AGENCY_CODE_OID, AgencyCode, PrivateKey


@dataclass(frozen=True)
class KeyPair:
    key: PrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _new_key(use_ec: bool) -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1()) if use_ec else rsa.generate_private_key(65537, 2048)


def create_ca(
    name: str = "edxml-gateway development CA",
    *,
    issuer: KeyPair | None = None,
    use_ec: bool = False,
    not_before: datetime | None = None,
    days: int = 3650,
    crl_url: str | None = None,
) -> KeyPair:
    """A root CA, or with ``issuer`` an intermediate CA under it (as the national root
    certifies the CA that issues agencies' certificates). ``crl_url``: where the issuer
    publishes the CRL that would revoke this CA (only an intermediate has one)."""
    key = _new_key(use_ec)
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1 if issuer is None else 0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()), critical=False
        )
        builder = _with_crl(builder, crl_url)
    return KeyPair(key, builder.sign(issuer.key if issuer else key, hashes.SHA256()))  # a root signs itself


def _with_crl(builder: x509.CertificateBuilder, crl_url: str | None) -> x509.CertificateBuilder:
    if crl_url is None:
        return builder
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
    return builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)


@dataclass(frozen=True)
class Revoked:
    """One entry of a CRL: which certificate, since when, and why (RFC 5280 reason code)."""

    serial: int
    at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def make_crl(
    ca: KeyPair,
    revoked: Iterable[Revoked] = (),
    *,
    number: int = 1,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """The CA's CRL (DER), valid from ``this_update`` (now) to ``next_update`` (a week on)."""
    start = this_update or datetime.now(UTC) - timedelta(seconds=5)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(start)
        .next_update(next_update or start + timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()), critical=False)
    )
    for entry in revoked:
        revoked_entry = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.at)
        if entry.reason is not x509.ReasonFlags.unspecified:
            revoked_entry = revoked_entry.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(revoked_entry.build())
    crl = builder.sign(ca.key, hash_algorithm or hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def issue(
    ca: KeyPair,
    agency: str,
    name: str | None = None,
    *,
    use_ec: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 825,
    signing_usage: bool = True,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    key: PrivateKey | None = None,
    crl_url: str | None = None,
) -> KeyPair:
    """A certificate for one agency, its code in Subject organizationIdentifier (2.5.4.97).

    ``key``: certify this key pair instead of making a new one (a benchmark's many agencies).
    The keyword arguments beyond it exist so tests can make the certificates an attacker or a
    careless admin would bring: expired, not yet valid, without signing usage.
    """
    code = AgencyCode.lenient(agency)
    key = key or _new_key(use_ec)
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    end = not_after or start + timedelta(days=days)
    shown = _fit(name or code.text)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, shown),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, shown),
            x509.NameAttribute(AGENCY_CODE_OID, code.text),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=signing_usage,
        content_commitment=signing_usage,
        key_encipherment=not signing_usage,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()), critical=False)
    )
    certificate = _with_crl(builder, crl_url).sign(ca.key, hash_algorithm or hashes.SHA256())
    return KeyPair(key, certificate)


def _fit(name: str) -> str:
    """A name within the 64 bytes cryptography allows CN and O (RFC 5280's upper bound, which
    it counts in UTF-8): "Sở Nông nghiệp và Phát triển nông thôn tỉnh Tiền Giang" is 69. Cut at a
    character; the agency is known by its code, which is never cut."""
    return name.encode()[:64].decode(errors="ignore").rstrip()
