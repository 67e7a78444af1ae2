"""Every PDF attachment of a received document checked on arrival (issue 19): its signatures
judged against our trust anchors and the revocation policy, the verdict written beside the
attachment in the inbox (document.json ``pdf_signatures``) and logged; under
``[signing] pdf_signatures = "require"`` a PDF without a valid signature refuses the document
with 02 and the reason.

The PDFs are read in the bounded child process (gateway.pdfsig.worker). The CRLs the signers'
certificates name come from the same cache as the XML signatures' (the same national CA,
usually the same CRLs): a PDF is judged with those at hand, and once more after fetching the
ones it named that were not.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway import edxml
from gateway.daemon import revoking
from gateway.daemon.examine import Examined
from gateway.edxml.revocation import RevocationPolicy, RevocationState
from gateway.pdfsig.verdict import MAX_CRL_URLS, PDF_MAGIC_WITHIN, PdfPolicy, PdfReport
from gateway.pdfsig.worker import TIMEOUT_SECONDS, PdfInspector
from gateway.revocation import Revocation

# The reading time of one document's PDFs together: two PDFs at the reader's deadline (a signed
# PDF of an exchange takes well under a second). The deliveries of a round wait for the
# document being examined; without a budget, a hundred PDFs each built to run to the deadline
# (and asked again on a fresh reader) would hold them for over an hour. What is past it is
# judged "not read" and, under "require", asked again later, as a reader that gave up is.
DOCUMENT_PDF_SECONDS = 2 * TIMEOUT_SECONDS


def is_pdf(attachment: edxml.Attachment) -> bool:
    """By its name, its type, or its first KiB (a PDF named "vb" sent as octet-stream is one)."""
    return (
        attachment.content_type.lower() == "application/pdf"
        or attachment.attachment_name.lower().endswith(".pdf")
        or b"%PDF-" in attachment.data[:PDF_MAGIC_WITHIN]
    )


def signed_validly(reports: tuple[PdfReport | None, ...]) -> bool | None:
    """What the report counts of a delivered document: its PDFs all validly signed, or not;
    None when it has none, or one could not be judged (the reader gave up, a CRL was missing)."""
    judged = [report for report in reports if report is not None]
    if not judged or any(report.transient for report in judged):
        return None
    return all(report.valid for report in judged)


def weigh(report: PdfReport, had: set[str], *, hard: bool) -> PdfReport:
    """The policy's "hard" on a report: a signature the child found valid whose trusted path
    names a CRL that could not be had, or whose revocation the child found unknown with the
    CRLs it had (one only at an ldap: address, say), is not valid, as an XML signature's would
    be. The report is worth asking again (transient) when a CRL may yet be fetched. Under
    "soft" it stands."""
    if not hard:
        return report
    weighed, fetchable = [], False
    for signature in report.signatures:
        missing = [url for url in signature.crl_urls if url not in had]
        unknown = signature.revocation == RevocationState.UNKNOWN
        if signature.valid and (missing or unknown):
            fetchable = fetchable or bool(missing)
            why = f"no current CRL from {missing[0]}" if missing else signature.revocation_detail
            signature = replace(signature, valid=False, detail=f"revocation status unknown: {why}")
        weighed.append(signature)
    return replace(report, signatures=tuple(weighed), transient=report.transient or fetchable)


class PdfChecks:
    def __init__(self, policy: PdfPolicy, trust: edxml.TrustStore, revocation: Revocation, log: Any) -> None:
        self.policy = policy
        self.revocation = revocation
        self.log = log
        self.anchors = [c.public_bytes(serialization.Encoding.DER) for c in trust.authorities]
        self.intermediates = [c.public_bytes(serialization.Encoding.DER) for c in trust.intermediates]
        self.inspector = PdfInspector()
        self.document_seconds = DOCUMENT_PDF_SECONDS

    def close(self) -> None:
        self.inspector.close()

    async def examine(
        self, examined: Examined, at: datetime | None, log: Any, *, deadline_passed: bool
    ) -> Examined | revoking.Wait:
        """``examined`` with a report for each PDF attachment (None for the others), refused
        under "require" when one has no valid signature. A report the reader could not finish
        (time, memory) or whose CRL could not be had is asked again later under "require"
        (Wait), until the retry deadline; under "report" it is written down as it is."""
        document = examined.message
        if examined.refusal is not None or not isinstance(document, edxml.Document):
            return examined
        if not any(is_pdf(a) for a in document.attachments):
            return examined
        moment = at or datetime.now(UTC)
        reports: list[PdfReport | None] = []
        started = time.monotonic()
        for attachment in document.attachments:
            if not is_pdf(attachment):
                reports.append(None)
                continue
            if time.monotonic() - started > self.document_seconds:
                budget = f"{self.document_seconds:g} s"
                report = PdfReport(
                    problem=f"not read: this document's PDFs took more than {budget} together", transient=True
                )
            else:
                report = await self._judge(attachment.data, moment)
            reports.append(report)
            log.info(
                "pdf_checked",
                document_id=document.document_id,
                attachment=attachment.attachment_name,
                valid=report.valid,
                problem=report.problem,
                transient=report.transient,
                signatures=[(s.signer, s.valid, s.detail) for s in report.signatures],
            )
        examined = replace(examined, pdf=tuple(reports))
        if self.policy is not PdfPolicy.REQUIRE:
            return examined
        for attachment, report in zip(document.attachments, reports, strict=True):
            reason = report.refusal(attachment.attachment_name) if report is not None else None
            if reason is None:
                continue
            if report is not None and report.transient and not deadline_passed:
                return revoking.Wait(f"PDF signatures not judged yet: {reason}")
            return replace(examined, refusal=f"PDF signature required ([signing] pdf_signatures): {reason}")
        return examined

    async def _judge(self, data: bytes, at: datetime) -> PdfReport:
        hard = self.revocation.policy is RevocationPolicy.HARD
        cache = self.revocation.cache
        known = {c.url: c for c in cache.fresh(at)} if cache is not None else {}
        report = await self._inspect(data, list(known.values()), at)
        missing = [url for url in report.crl_urls if url not in known]
        if cache is not None and missing:
            issuers = {url: x509.load_der_x509_certificate(der) for url, der in report.crl_issuers}
            crls, _ = await cache.get(missing[:MAX_CRL_URLS], issuers)
            fetched = {c.url: c for c in crls if not c.stale(at)}  # current when the axis accepted it
            if fetched:  # judged again only when something new was had
                known.update(fetched)
                report = await self._inspect(data, list(known.values()), at)
        return weigh(report, set(known), hard=hard)

    async def _inspect(self, data: bytes, crls: list, at: datetime) -> PdfReport:
        facts = {"anchors": self.anchors, "intermediates": self.intermediates, "crls": [c.der for c in crls], "at": at}
        report = await self.inspector.inspect(data, **facts)
        if report.transient:  # the reader gave up (time, memory, died): once more, on a fresh one
            report = await self.inspector.inspect(data, **facts)
        return report
