"""Revocation (thu hồi chứng thư số): whether a signer's certificate, or a CA above it, had been
revoked at the moment that counts, judged from CRLs the caller brings. Sans-IO: fetching and
caching the CRLs is the caller's (gateway.revocation).

The judging is pyhanko-certvalidator's (RFC 5280 path validation with CRL processing: the
CRL's issuer and signature, its scope and validity, the entry's revocation time), the library
pyHanko validates PDF signatures with, so a document's XML signature and its PDFs' signatures
are judged by one set of rules. cryptography's own verifier, which builds our paths, does not
read CRLs.

The moment is when the axis accepted the message: a certificate revoked after that still counts
for it ("revoked before the axis accepted it is refused; one revoked after is accepted").
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)

from gateway.edxml.certs import describe
from gateway.errors import CertificateRevoked, RevocationUnknown, SignatureError


class RevocationPolicy(enum.StrEnum):
    """``[signing] revocation``: what an unknown status costs a message."""

    OFF = "off"  # not checked at all
    SOFT = "soft"  # revoked is refused; unknown (no CRL to be had) is accepted and logged
    HARD = "hard"  # revoked and unknown are both refused


class RevocationState(enum.StrEnum):
    GOOD = "good"  # every CRL the path names was read and none lists its certificate
    REVOKED = "revoked"  # listed, revoked at or before the moment
    UNKNOWN = "unknown"  # some CRL could not be had, or is stale, or is not the CA's
    NOT_CHECKED = "not_checked"  # the policy is off, or the path names no CRL


@dataclass(frozen=True)
class RevocationVerdict:
    state: RevocationState
    detail: str
    revoked_at: datetime | None = None
    transient: bool = False  # unknown because a CRL could not be fetched just now: worth asking again

    def error(self, policy: RevocationPolicy) -> SignatureError | None:
        """Why the message is refused under ``policy`` (its stable code included), or None."""
        if self.state is RevocationState.REVOKED:
            return CertificateRevoked(self.detail)
        if self.state is RevocationState.UNKNOWN and policy is RevocationPolicy.HARD:
            return RevocationUnknown(f"{self.detail}; [signing] revocation is hard")
        return None


NOT_CHECKED = RevocationVerdict(RevocationState.NOT_CHECKED, "revocation not checked")


def distribution_points(chain: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """The CRL addresses the gateway can fetch (http, https) that the certificates of a path
    name, the anchor's left out: what must be fetched before :func:`judge` can say GOOD."""
    return tuple(url for url in dict.fromkeys(_named_points(chain)) if url.lower().startswith(("http://", "https://")))


def issuers_by_point(chain: Sequence[x509.Certificate]) -> dict[str, x509.Certificate]:
    """For each fetchable CRL address of a path, the CA whose CRL it is: the issuer of the
    certificate that names it (the next one up the path)."""
    found: dict[str, x509.Certificate] = {}
    for certificate, issuer in itertools.pairwise(chain):
        for url in distribution_points([certificate, issuer]):
            found.setdefault(url, issuer)
    return found


def names_crls(chain: Sequence[x509.Certificate]) -> bool:
    """Whether any certificate of the path (the anchor's left out) names a CRL at all, at any
    address (ldap: too): only a path that names none is NOT_CHECKED; one whose CRLs cannot be
    fetched is UNKNOWN."""
    return any(True for _ in _named_points(chain, every=True))


def _named_points(chain: Sequence[x509.Certificate], *, every: bool = False) -> Iterator[str]:
    for certificate in chain[:-1] if len(chain) > 1 else chain:
        try:
            points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            continue
        except ValueError:  # an extension that cannot be read still says a CRL exists
            yield ""
            continue
        for point in points:
            if every and (point.relative_name is not None or point.crl_issuer is not None):
                yield ""
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier):
                    yield name.value
                elif every:
                    yield ""


def chain_key(chain: Sequence[x509.Certificate]) -> str:
    """A short name for a path, for memos."""
    digest = hashlib.sha256()
    for certificate in chain:
        digest.update(certificate.fingerprint(hashes.SHA256()))
    return digest.hexdigest()


def judge(chain: Sequence[x509.Certificate], crls: Iterable[bytes], *, at: datetime) -> RevocationVerdict:
    """Whether any certificate of ``chain`` (signer first, anchor last, as the signature check
    built it) was revoked at ``at``, by the DER CRLs ``crls``. NOT_CHECKED when the path names
    no CRL: there is nothing to ask (a CA that publishes none cannot revoke)."""
    if not names_crls(chain):
        return RevocationVerdict(RevocationState.NOT_CHECKED, "the certificates name no CRL distribution point")
    leaf, *middle = [_asn1(c) for c in chain]
    anchor = middle.pop() if middle else leaf
    try:
        context = ValidationContext(
            trust_roots=[anchor],
            other_certs=middle,
            crls=_readable(crls),
            moment=at,
            allow_fetching=False,  # the caller fetched; nothing here touches the network
            revocation_mode="hard-fail",  # an unknown status is raised, so the policy can decide
            # A CRL issued after the moment still tells whether a revocation came before it: a
            # document accepted last week is judged by today's CRL and its entries' dates.
            retroactive_revinfo=True,
        )
        validator = CertificateValidator(leaf, middle, validation_context=context)
        _run_without_io(validator.async_validate_path())
    except RevokedError as exc:
        return RevocationVerdict(
            RevocationState.REVOKED,
            f"certificate {describe(chain[0])}: {exc}",
            revoked_at=exc.revocation_dt,
        )
    except InsufficientRevinfoError as exc:
        return RevocationVerdict(RevocationState.UNKNOWN, str(exc))
    except (PathBuildingError, PathValidationError) as exc:
        # the path itself was already accepted by the signature check; what fails here is the
        # revocation data around it (a CRL signed by another CA, say): unknown, not revoked
        return RevocationVerdict(RevocationState.UNKNOWN, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # hostile CRL bytes must not surface as a library exception
        return RevocationVerdict(RevocationState.UNKNOWN, f"revocation data cannot be processed: {exc}")
    return RevocationVerdict(RevocationState.GOOD, "not revoked")


def _readable(crls: Iterable[bytes]) -> list[asn1_crl.CertificateList]:
    """The CRLs that parse; one that does not is as good as missing (its issuer's status unknown)."""
    parsed = (_parsed(data) for data in crls)
    return [crl for crl in parsed if crl is not None]


def _parsed(data: bytes) -> asn1_crl.CertificateList | None:
    try:
        crl = asn1_crl.CertificateList.load(data)
        crl["tbs_cert_list"]["issuer"]  # the outer parts parse now; entries lazily, under judge's guard
    except Exception:  # any bytes at all may have come from a URL
        return None
    return crl


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _run_without_io(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits: certvalidator's API is async only because it may
    fetch, and with fetching off it returns at the first step. No event loop is needed, so
    this works in a worker thread and inside a running loop alike."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("certificate validation waited for I/O with fetching off")
