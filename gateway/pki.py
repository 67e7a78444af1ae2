"""A development PKI: a CA and agency certificates, so tests, the demo and admins trying
the gateway out have real keys. Production agencies use certificates from their CA
(e.g. the government CA); the only requirement the gateway puts on them is documented in
:mod:`gateway.edxml.certs` (agency code in Subject organizationIdentifier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.edxml import AGENCY_CODE_OID, AgencyCode, PrivateKey
from gateway.errors import KeyMaterialError
from gateway.fsutil import write_atomic

CA_CERT = "ca.pem"
CA_KEY = "ca.key"


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
    use_ec: bool = False,
    not_before: datetime | None = None,
    days: int = 3650,
) -> KeyPair:
    key = _new_key(use_ec)
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
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
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, certificate)


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
    certificate = (
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
        .sign(ca.key, hash_algorithm or hashes.SHA256())
    )
    return KeyPair(key, certificate)


def _fit(name: str) -> str:
    """A name within the 64 bytes cryptography allows CN and O (RFC 5280's upper bound, which
    it counts in UTF-8): "Sở Nông nghiệp và Phát triển nông thôn tỉnh Tiền Giang" is 69. Cut at a
    character; the agency is known by its code, which is never cut."""
    return name.encode()[:64].decode(errors="ignore").rstrip()


# --- the folder layout of `edxml-gateway pki` ------------------------------------------------------


def init_dir(folder: Path, *, use_ec: bool = False) -> tuple[Path, Path]:
    """Create folder/ca.pem and folder/ca.key; never overwrites an existing CA."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    for path in (cert_path, key_path):
        if path.exists():
            raise KeyMaterialError(f"{path} already exists: refusing to replace a CA", where=str(path))
    ca = create_ca(use_ec=use_ec)
    write_atomic(key_path, ca.key_pem, mode=0o600, overwrite=False)
    write_atomic(cert_path, ca.cert_pem, overwrite=False)
    return cert_path, key_path


def load_ca(folder: Path) -> KeyPair:
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyMaterialError(
            f"no CA in {folder}: run `edxml-gateway pki init --dir {folder}` first", where=str(exc.filename)
        ) from None
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise KeyMaterialError(f"CA files in {folder} cannot be read: {exc}", where=str(folder)) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyMaterialError("the CA key is neither RSA nor EC", where=str(key_path))
    return KeyPair(key, certificate)


def issue_to_dir(folder: Path, agency: str, name: str | None = None, *, use_ec: bool = False) -> tuple[Path, Path]:
    """Write folder/CODE.pem and folder/CODE.key for one agency, issued by the folder's CA."""
    code = AgencyCode.lenient(agency)
    ca = load_ca(folder)
    pair = issue(ca, code.text, name, use_ec=use_ec)
    cert_path, key_path = folder / f"{code.text}.pem", folder / f"{code.text}.key"
    write_atomic(key_path, pair.key_pem, mode=0o600)
    write_atomic(cert_path, pair.cert_pem)
    return cert_path, key_path
