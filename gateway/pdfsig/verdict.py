"""What the gateway says about the signatures of a PDF attachment (chữ ký số trên văn bản PDF),
as values: written into the inbox document.json (``pdf_signatures``) and the log, and judged
by ``[signing] pdf_signatures``. No I/O; no pyHanko here (the child process speaks these)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

MAX_SIGNATURES = 16  # a document carries its signer's and its seal's; a few more for approvals
PDF_MAGIC_WITHIN = 1024  # PDF readers accept the header this far in; past it, it is no PDF
PDF_TAIL = 2048  # where a PDF's last startxref stands (ISO 32000: at the end of the file)


def plainly_not_a_pdf(data: bytes) -> str | None:
    """Why ``data`` cannot be a PDF, judged from its two ends without reading it: no header,
    or no cross-reference pointer at its end (every PDF, signed or not, ends with one). What
    passes is for pyHanko, in the child; what fails here never costs one."""
    if b"%PDF-" not in data[:PDF_MAGIC_WITHIN]:
        return "not a PDF (no %PDF- header)"
    if b"startxref" not in data[-PDF_TAIL:]:
        return "the PDF cannot be read: no startxref at its end (truncated, or not a PDF)"
    return None


class PdfPolicy(enum.StrEnum):
    """``[signing] pdf_signatures``."""

    REPORT = "report"  # every PDF is checked and the verdict written down; none is refused for it
    REQUIRE = "require"  # a PDF with no valid signature refuses the document (02 with the reason)


@dataclass(frozen=True)
class PdfSignature:
    """One signature in a PDF. ``valid``: intact, covering the whole file, trusted, not revoked."""

    field: str
    signer: str | None = None  # the certificate's common name (the person, or the seal)
    organisation: str | None = None
    agency: str | None = None  # organizationIdentifier, when the certificate names an agency code
    serial: str | None = None
    signed_at: str | None = None  # what the signer's software says (not proof: see timestamp)
    timestamp: str | None = None  # an embedded RFC 3161 timestamp's time, if there is one
    intact: bool = False
    covers_whole_file: bool = False
    trusted: bool = False
    revoked: bool = False
    valid: bool = False
    detail: str = ""

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PdfReport:
    """The verdict on one PDF: its signatures, or why none could be judged."""

    signatures: tuple[PdfSignature, ...] = ()
    problem: str | None = None  # not a PDF, unreadable, too large to check in time or memory
    crl_urls: tuple[str, ...] = ()  # the CRLs the signers' certificates name (to fetch, then judge again)

    @property
    def valid(self) -> bool:
        """At least one signature, and every one valid."""
        return self.problem is None and bool(self.signatures) and all(s.valid for s in self.signatures)

    def refusal(self, name: str) -> str | None:
        """Why ``require`` refuses the document for this PDF, or None."""
        if self.valid:
            return None
        if self.problem is not None:
            return f"{name}: {self.problem}"
        if not self.signatures:
            return f"{name}: the PDF is not signed"
        bad = next(s for s in self.signatures if not s.valid)
        return f"{name}: signature {bad.field!r} by {bad.signer or 'an unnamed signer'}: {bad.detail}"
