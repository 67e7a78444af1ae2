"""What the signatures in one PDF say, by pyHanko: runs inside the inspector's child process
(gateway.pdfsig.worker), never in the gateway's own, because a hostile PDF can cost any
amount of memory or time to read.

For each signature: who signed (the certificate's name, organisation and agency code), when
they say they signed (and a timestamp's time, if one is embedded), whether the signed bytes
are intact, whether the signature covers the whole file or something was added after it,
whether the certificate chains to our trust anchors, and whether it was revoked at the
moment that counts (when the axis accepted the message carrying the PDF). CRLs come from the
caller; this fetches nothing.
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.edxml.revocation import issuers_by_point, judge
from gateway.pdfsig.verdict import MAX_CRL_URLS, MAX_SIGNATURES, PdfReport, PdfSignature, plainly_not_a_pdf


def inspect(
    data: bytes,
    *,
    anchors: Sequence[bytes],
    intermediates: Sequence[bytes],
    crls: Sequence[bytes],
    at: datetime,
) -> PdfReport:
    """The report on ``data``: a verdict per signature, or why it could not be read."""
    plainly = plainly_not_a_pdf(data)
    if plainly is not None:
        return PdfReport(problem=plainly)
    # pyHanko logs a traceback for every suspicious revision it finds; the verdict says it
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except RecursionError:
        return PdfReport(problem="the PDF nests its objects too deep to be read")
    except Exception as exc:  # any bytes at all may be called a PDF
        _out_of_memory(exc)
        return PdfReport(problem=f"the PDF cannot be read: {type(exc).__name__}: {exc}")
    if len(embedded) > MAX_SIGNATURES:
        return PdfReport(problem=f"the PDF holds {len(embedded)} signatures; at most {MAX_SIGNATURES} are checked")
    issuers: dict[str, bytes] = {}
    verdicts = []
    signature_fields = frozenset(str(signature.field_name or "") for signature in embedded)
    for signature in embedded:
        verdict, named = _one(signature, anchors, intermediates, crls, at, signature_fields)
        verdicts.append(verdict)
        for url, issuer in named.items():
            issuers.setdefault(url, issuer)
    return PdfReport(signatures=tuple(verdicts), crl_issuers=tuple(sorted(issuers.items())))


def _one(signature, anchors, intermediates, crls, at, signature_fields) -> tuple[PdfSignature, dict[str, bytes]]:
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    name = str(signature.field_name or "")
    try:
        certificate = signature.signer_cert
    except Exception as exc:
        return PdfSignature(field=name, detail=f"the signature names no readable certificate: {exc}"), {}
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der) for der in anchors],
        other_certs=[asn1_x509.Certificate.load(der) for der in intermediates],
        crls=list(crls),
        moment=at,
        allow_fetching=False,
        # a CRL at hand that lists the signer revokes it; one missing is for the parent to weigh
        # (the policy's "hard" needs the path's CRLs, which only a trusted path may name)
        revocation_mode="soft-fail",
        retroactive_revinfo=True,
    )
    try:
        status = asyncio.run(async_validate_pdf_signature(signature, context))
    except RecursionError:
        return _named(certificate, name, "the signed revision nests too deep to be checked"), {}
    except Exception as exc:
        _out_of_memory(exc)
        return _named(certificate, name, f"the signature cannot be checked: {type(exc).__name__}: {exc}"), {}
    timestamp = status.timestamp_validity
    whole = status.coverage is SignatureCoverageLevel.ENTIRE_FILE
    revoked = status.revocation_details is not None
    intact = bool(status.intact and status.valid)
    valid = bool(status.bottom_line)  # pyHanko's whole judgement: what was added after it is allowed
    # pyHanko allows a later revision to fill in form fields (PDF's form filling, which an
    # approval signature permits): in an official document a field filled after signing
    # changes what the signed page shows. Later signatures fill their own fields: those pass.
    filled = sorted(set(getattr(status.diff_result, "changed_form_fields", ())) - signature_fields)
    valid = valid and not filled
    # Only a path that reaches our anchors may name CRLs to fetch: a certificate anyone made
    # must not send the gateway to addresses of its choosing.
    chain = _chain(status.validation_path) if status.trusted and status.validation_path else []
    points = _path_points(chain)
    # The path's revocation judged as an XML signature's is, by the CRLs at hand: under "hard"
    # the parent refuses an unknown status, whether a CRL could not be fetched, is only at an
    # address the gateway does not fetch (ldap:), or is past the MAX_CRL_URLS it asks for.
    revocation = judge(chain, crls, at=at) if chain else None
    verdict = _named(
        certificate,
        name,
        _why(intact, whole, status, revoked, valid, filled),
        signed_at=status.signer_reported_dt.isoformat() if status.signer_reported_dt else None,
        timestamp=timestamp.timestamp.isoformat() if timestamp is not None else None,
        intact=intact,
        covers_whole_file=whole,
        trusted=bool(status.trusted),
        revoked=revoked,
        valid=valid,
        crl_urls=tuple(points),
        revocation=revocation.state.value if revocation else "",
        revocation_detail=revocation.detail if revocation else "",
    )
    return verdict, points


def _out_of_memory(exc: Exception) -> None:
    """Memory running out is the worker's to report (its cap), not a fact about the PDF. Under
    the cap a C extension's failed allocation can surface as a SystemError ("error return
    without exception set") instead of a MemoryError: the same, and no verdict on the file."""
    if isinstance(exc, MemoryError | SystemError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
        raise MemoryError from exc


def _why(intact: bool, whole: bool, status, revoked: bool, valid: bool, filled: list[str]) -> str:
    if not intact:
        return "the signed bytes changed after signing, or the signature is not the certificate's"
    if revoked:
        details = status.revocation_details
        return f"the certificate was revoked on {details.revocation_date:%Y-%m-%d %H:%M} UTC"
    if not status.trusted:
        return f"the certificate does not chain to a trusted authority ({status.trust_problem_indic})"
    if filled:
        shown = ", ".join(name[:60] for name in filled[:5]) + (
            f" and {len(filled) - 5} more" if len(filled) > 5 else ""
        )
        return f"form fields were filled in after it was signed: {shown}"
    if not valid and not whole:
        return "the file was changed after it was signed (content added after the signed revision)"
    if not valid:
        return f"not valid: {status.summary()}"
    if not whole:
        return "valid; later revisions only add signatures or timestamps"
    return "valid"


def _named(certificate, field: str, detail: str, **facts) -> PdfSignature:
    subject = certificate.subject.native if certificate is not None else {}
    return PdfSignature(
        field=field,
        signer=str(subject.get("common_name", "")) or None,
        organisation=str(subject.get("organization_name", "")) or None,
        agency=str(subject.get("organization_identifier", "")) or None,
        serial=f"{certificate.serial_number:x}" if certificate is not None else None,
        detail=detail,
        **facts,
    )


def _chain(path) -> list[x509.Certificate]:
    """A validation path as ours are ordered, signer first and anchor last (pyHanko: root first)."""
    return [x509.load_der_x509_certificate(c.dump()) for c in path.iter_certs(include_root=True)][::-1]


def _path_points(chain: list[x509.Certificate]) -> dict[str, bytes]:
    """The fetchable CRL addresses of a trusted path (the anchor's left out), at most
    MAX_CRL_URLS, each with the certificate (DER) of the CA whose CRL it is."""
    points = issuers_by_point(chain)
    return {url: issuer.public_bytes(Encoding.DER) for url, issuer in list(points.items())[:MAX_CRL_URLS]}
