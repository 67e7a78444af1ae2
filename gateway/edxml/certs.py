"""Certificates for edXML signatures: who may sign, and for which agency.

Where the agency code sits: the certificate's Subject carries it in the
``organizationIdentifier`` attribute (OID 2.5.4.97, the attribute ETSI EN 319 412-1
uses for the identifier of a legal person), holding exactly the code as it appears
in OrganId, e.g. ``000.00.00.H58``. A signature counts for a message only if this
code equals the message's From/OrganId.

The chain is checked here (by cryptography's RFC 5280 verifier), with the verification
time as a parameter, and signxml is then handed the verified certificate to check the
XML signature itself (so it never falls back to a public CA bundle).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from gateway.edxml.agency import AgencyCode
from gateway.errors import (
    AgencyCodeError,
    CertificateExpired,
    CertificateUsage,
    GatewayError,
    KeyMaterialError,
    SignerMismatch,
    UntrustedCertificate,
)

AGENCY_CODE_OID = NameOID.ORGANIZATION_IDENTIFIER
MAX_CHAIN_LENGTH = 4
MAX_OFFERED = 8  # intermediates read from one message's KeyInfo
MAX_RSA_BITS = 8192
MAX_RSA_EXPONENT = 2**32 - 1
# The NIST curves of FIPS 186-4 that CAs issue for signatures; smaller ones are too weak and
# others (brainpool, secp256k1) are not what a Vietnamese CA issues, so they only widen the surface.
ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_certificates(pem: bytes, *, what: str = "certificate file") -> tuple[x509.Certificate, ...]:
    try:
        certificates = tuple(x509.load_pem_x509_certificates(pem))
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise KeyMaterialError(f"{what} holds no readable PEM certificate: {exc}") from None
    return certificates


@dataclass(frozen=True)
class TrustStore:
    """The certificate authorities whose certificates may sign edXML (the trust anchors: roots,
    or intermediates an admin chose to trust outright), and ``intermediates``: CA certificates
    that are no anchors but may complete a path when a signer's KeyInfo leaves them out."""

    authorities: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    # the signers' paths built under these authorities, so that each message need not build its
    # own; never passed in, so a store made from another (dataclasses.replace) starts empty
    paths: TrustedPaths = field(default_factory=lambda: TrustedPaths(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.authorities:
            raise KeyMaterialError("the trust store holds no certificate")

    @classmethod
    def from_pem(cls, pem: bytes, intermediates: bytes | None = None) -> TrustStore:
        more = load_certificates(intermediates, what="intermediates file") if intermediates else ()
        return cls(load_certificates(pem, what="trust store"), more)

    def contains(self, certificate: x509.Certificate) -> bool:
        return any(certificate == authority for authority in self.authorities)


class TrustedPaths:
    """Signers' certificate paths already found good, with the period in which every certificate
    of the path is valid; within it the same leaf, offered the same certificates, gets the same
    verdict (nothing else of the check depends on the time), so the path is not built again.
    The whole check of a signer costs 0.2-0.5 ms a message; a province's 1,174 agencies sign
    every message with one of 1,174 certificates. Failures are never kept: each is checked again.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit  # paths kept, the least recently used forgotten first
        self._found: OrderedDict[tuple[x509.Certificate, ...], tuple[Signer, datetime, datetime]] = OrderedDict()
        self._lock = threading.Lock()  # signers are checked in worker threads

    def get(self, key: tuple[x509.Certificate, ...], at: datetime) -> Signer | None:
        with self._lock:
            found = self._found.get(key)
            if found is None:
                return None
            self._found.move_to_end(key)
        signer, valid_from, valid_until = found
        return signer if valid_from <= at <= valid_until else None

    def keep(self, key: tuple[x509.Certificate, ...], signer: Signer) -> None:
        valid_from = max(c.not_valid_before_utc for c in signer.chain)
        valid_until = min(c.not_valid_after_utc for c in signer.chain)
        with self._lock:
            self._found[key] = (signer, valid_from, valid_until)
            self._found.move_to_end(key)
            while len(self._found) > self.limit:
                self._found.popitem(last=False)

    def __len__(self) -> int:
        return len(self._found)


@dataclass(frozen=True)
class SigningIdentity:
    """A private key with its certificate (and any intermediates), as the signer holds them."""

    key: PrivateKey = field(repr=False)
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()
    # the key is in this process's memory and signs in about a millisecond; a key held elsewhere
    # (a token, a device that may take far longer) is never asked from an event loop
    in_memory: bool = True

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, password: bytes | None = None) -> SigningIdentity:
        try:
            # OpenSSL's RSA key check costs 36 ms a key: 11 s for an installation hosting 300
            # agencies. The self-test below proves what matters of it, that the key makes
            # signatures its certificate verifies, in 2 ms.
            key = serialization.load_pem_private_key(key_pem, password=password, unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError) as exc:
            raise KeyMaterialError(f"private key cannot be read: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyMaterialError("only RSA and EC private keys sign edXML")
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in ALLOWED_CURVES:
            raise KeyMaterialError(
                f"the private key is on the curve {key.curve.name}; recipients accept only"
                f" {', '.join(ALLOWED_CURVES.values())}"
            )
        certificates = load_certificates(cert_pem)
        leaf, *rest = certificates
        if leaf.public_key().public_numbers() != key.public_key().public_numbers():
            raise KeyMaterialError("the certificate does not belong to the private key")
        _self_test(key)
        return cls(key=key, certificate=leaf, intermediates=tuple(rest))

    @classmethod
    def from_key(cls, key: PrivateKey, cert_pem: bytes) -> SigningIdentity:
        """A key held elsewhere (on a token) with its certificate (and any intermediates): one
        signature made and verified proves they belong together."""
        leaf, *rest = load_certificates(cert_pem)
        _self_test(key, leaf.public_key())
        return cls(key=key, certificate=leaf, intermediates=tuple(rest), in_memory=False)

    @property
    def agency(self) -> AgencyCode:
        return agency_of(self.certificate)


def _self_test(key: PrivateKey, public: Any = None) -> None:
    """Sign and verify once (by ``public``, by default the key's own): a private key whose parts
    do not fit together (a corrupted file, a fault), or a token key that is not the
    certificate's, makes signatures that fail here rather than at every recipient."""
    probe = b"edxml-gateway key self-test"
    public = public or key.public_key()
    try:
        if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
            public.verify(
                key.sign(probe, padding.PKCS1v15(), hashes.SHA256()), probe, padding.PKCS1v15(), hashes.SHA256()
            )
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(key.sign(probe, ec.ECDSA(hashes.SHA256())), probe, ec.ECDSA(hashes.SHA256()))
        else:
            raise KeyMaterialError("the private key and the certificate's key are of different kinds")
    except (InvalidSignature, ValueError) as exc:
        raise KeyMaterialError(
            f"the private key does not make signatures its certificate verifies ({type(exc).__name__})"
        ) from None


def agency_of(certificate: x509.Certificate) -> AgencyCode:
    """The agency code a certificate speaks for (Subject organizationIdentifier)."""
    values = certificate.subject.get_attributes_for_oid(AGENCY_CODE_OID)
    if len(values) != 1:
        raise SignerMismatch(
            f"certificate {describe(certificate)} names {len(values)} agency codes in"
            " Subject organizationIdentifier (2.5.4.97); exactly one is required"
        )
    try:
        return AgencyCode.lenient(str(values[0].value))
    except AgencyCodeError as exc:
        raise SignerMismatch(f"certificate {describe(certificate)}: {exc.message}") from None


def describe(certificate: x509.Certificate) -> str:
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]
    return f"'{certificate.subject.rfc4514_string()}' (sha256 {fingerprint}…)"


def _check_period(certificate: x509.Certificate, at: datetime, role: str) -> None:
    if at < certificate.not_valid_before_utc:
        raise CertificateExpired(
            f"{role} {describe(certificate)} is not valid before"
            f" {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    if at > certificate.not_valid_after_utc:
        raise CertificateExpired(
            f"{role} {describe(certificate)} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def check_own_identity(identity: SigningIdentity, trust: TrustStore, *, at: datetime | None = None) -> None:
    """Refuse a trust store that would make us refuse every legitimate message: one holding an
    agency's certificate instead of its CA, or one our own certificate does not chain to."""
    for authority in (*trust.authorities, *trust.intermediates):
        if not _is_ca(authority):
            raise KeyMaterialError(
                f"the trust store holds {describe(authority)}, which is not a CA certificate:"
                " it must hold the certificate authority that issues agencies' certificates"
            )
    try:
        check_signing_certificate(identity.certificate, trust, at=at, offered=identity.intermediates)
    except GatewayError as exc:
        raise KeyMaterialError(
            f"our own certificate is not accepted under this trust store, so no recipient sharing it would"
            f" accept ours either, and we would refuse theirs: {exc.message}"
        ) from None


def check_key(certificate: x509.Certificate, role: str = "certificate") -> None:
    """Refuse weak keys, and keys whose only use is to make verification slow (huge RSA exponents or moduli)."""
    try:
        key = certificate.public_key()
    except Exception as exc:  # read lazily: a key broken (or of an unknown kind) inside a valid envelope
        raise UntrustedCertificate(f"{role} {describe(certificate)} holds a key that cannot be read: {exc}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise UntrustedCertificate(
                f"{role} {describe(certificate)} has an EC key on the curve {key.curve.name};"
                f" only {', '.join(ALLOWED_CURVES.values())} are accepted"
            )
    elif isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        if key.key_size > MAX_RSA_BITS or key.key_size < 2048 or numbers.e > MAX_RSA_EXPONENT or numbers.e < 3:
            raise UntrustedCertificate(
                f"{role} {describe(certificate)} has an RSA key outside 2048-{MAX_RSA_BITS} bits"
                f" or an exponent outside 3-{MAX_RSA_EXPONENT}"
            )
    else:
        raise UntrustedCertificate(f"{role} {describe(certificate)} has neither an RSA nor an EC key")


def check_signing_certificate(
    leaf: x509.Certificate,
    trust: TrustStore,
    *,
    at: datetime | None = None,
    offered: tuple[x509.Certificate, ...] = (),
) -> AgencyCode:
    """Check that ``leaf`` may sign edXML at time ``at`` and return the agency it speaks for.

    Here: the signer's own period, key, usage (digitalSignature or nonRepudiation, not a
    CA) and agency code, with messages a person can act on. The chain, up through at most
    MAX_OFFERED intermediates from the message to an authority of the trust store, is
    built and checked by cryptography's RFC 5280 verifier (signatures, CA flags, path
    length, keyCertSign, critical extensions). Anything it cannot process is refused with
    a gateway error, never an exception of the library's own.
    """
    return check_signer(leaf, trust, at=at, offered=offered).agency


@dataclass(frozen=True)
class Signer:
    """Who signed: the agency, and the path that made the certificate trusted (the signer's
    certificate first, the trust anchor last), which revocation is then judged along."""

    agency: AgencyCode
    chain: tuple[x509.Certificate, ...]


def check_signer(
    leaf: x509.Certificate,
    trust: TrustStore,
    *,
    at: datetime | None = None,
    offered: tuple[x509.Certificate, ...] = (),
) -> Signer:
    """:func:`check_signing_certificate`, also returning the path it built."""
    at = at or datetime.now(UTC)
    key = (leaf, *offered)  # certificates compare and hash by their DER bytes
    try:
        known = trust.paths.get(key, at)
        if known is not None:
            return known
        signer = _check(leaf, trust, at, offered)
        trust.paths.keep(key, signer)
        return signer
    except GatewayError:
        raise
    except Exception as exc:  # a hostile certificate must not surface as a library exception
        raise UntrustedCertificate(f"certificate cannot be processed: {type(exc).__name__}: {exc}") from None


def _check(leaf: x509.Certificate, trust: TrustStore, at: datetime, offered: tuple[x509.Certificate, ...]) -> Signer:
    _check_period(leaf, at, "certificate")
    check_key(leaf, "certificate")
    if _is_ca(leaf):
        raise CertificateUsage(f"certificate {describe(leaf)} is a CA certificate, not a signer's")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateUsage(f"certificate {describe(leaf)} has no KeyUsage extension") from None
    if not (usage.digital_signature or usage.content_commitment):
        raise CertificateUsage(f"certificate {describe(leaf)} is not for digitalSignature or nonRepudiation")
    agency = agency_of(leaf)

    unique = list(dict.fromkeys(c for c in offered if c != leaf))
    if len(unique) > MAX_OFFERED:
        raise UntrustedCertificate(f"the message offers {len(unique)} certificates; at most {MAX_OFFERED} are read")
    for certificate in unique:
        check_key(certificate, "offered certificate")
    # the configured intermediates complete a path the same way, in any order (they were read
    # from the admin's file, not from the message, so they do not count against MAX_OFFERED)
    unique.extend(c for c in trust.intermediates if c not in unique)
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust.authorities)))
        .time(at)
        .max_chain_depth(MAX_CHAIN_LENGTH)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(leaf, unique).chain
    except VerificationError as exc:
        for issuer in (*trust.authorities, *unique):
            if issuer.subject == leaf.issuer:
                _check_period(issuer, at, "issuing CA")  # say "expired" when that is the reason
        raise UntrustedCertificate(
            f"certificate {describe(leaf)} does not chain to a trusted authority"
            f" (issuer '{leaf.issuer.rfc4514_string()}'): {exc}"
        ) from None
    return Signer(agency, tuple(chain))
