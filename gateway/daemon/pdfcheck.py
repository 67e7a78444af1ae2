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

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization

from gateway import edxml
from gateway.daemon.examine import Examined
from gateway.edxml.revocation import RevocationPolicy
from gateway.pdfsig.verdict import PdfPolicy, PdfReport
from gateway.pdfsig.worker import PdfInspector
from gateway.revocation import Revocation


def is_pdf(attachment: edxml.Attachment) -> bool:
    return attachment.content_type.lower() == "application/pdf" or attachment.attachment_name.lower().endswith(".pdf")


class PdfChecks:
    def __init__(self, policy: PdfPolicy, trust: edxml.TrustStore, revocation: Revocation, log: Any) -> None:
        self.policy = policy
        self.revocation = revocation
        self.log = log
        self.anchors = [c.public_bytes(serialization.Encoding.DER) for c in trust.authorities]
        self.intermediates = [c.public_bytes(serialization.Encoding.DER) for c in trust.intermediates]
        self.inspector = PdfInspector()

    def close(self) -> None:
        self.inspector.close()

    async def examine(self, examined: Examined, at: datetime | None, log: Any) -> Examined:
        """``examined`` with a report for each PDF attachment (None for the others), refused
        under "require" when one has no valid signature."""
        document = examined.message
        if examined.refusal is not None or not isinstance(document, edxml.Document):
            return examined
        if not any(is_pdf(a) for a in document.attachments):
            return examined
        moment = at or datetime.now(UTC)
        reports: list[PdfReport | None] = []
        for attachment in document.attachments:
            if not is_pdf(attachment):
                reports.append(None)
                continue
            report = await self._judge(attachment.data, moment)
            reports.append(report)
            log.info(
                "pdf_checked",
                document_id=document.document_id,
                attachment=attachment.attachment_name,
                valid=report.valid,
                problem=report.problem,
                signatures=[(s.signer, s.valid, s.detail) for s in report.signatures],
            )
        examined = replace(examined, pdf=tuple(reports))
        if self.policy is PdfPolicy.REQUIRE:
            for attachment, report in zip(document.attachments, reports, strict=True):
                reason = report.refusal(attachment.attachment_name) if report is not None else None
                if reason is not None:
                    return replace(examined, refusal=f"PDF signature required ([signing] pdf_signatures): {reason}")
        return examined

    async def _judge(self, data: bytes, at: datetime) -> PdfReport:
        hard = self.revocation.policy is RevocationPolicy.HARD
        cache = self.revocation.cache
        known = cache.fresh() if cache is not None else []
        report = await self.inspector.inspect(
            data, anchors=self.anchors, intermediates=self.intermediates, crls=[c.der for c in known], at=at, hard=hard
        )
        missing = [url for url in report.crl_urls if url not in {c.url for c in known}]
        if cache is None or not missing:
            return report
        crls, _ = await cache.get(missing)
        every = [c.der for c in known] + [c.der for c in crls]
        return await self.inspector.inspect(
            data, anchors=self.anchors, intermediates=self.intermediates, crls=every, at=at, hard=hard
        )
