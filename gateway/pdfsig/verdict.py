"""What the gateway says about the signatures of a PDF attachment (chữ ký số trên văn bản PDF),
as values: written into the inbox document.json (``pdf_signatures``) and the log, and judged
by ``[signing] pdf_signatures``. No I/O; no pyHanko here (the child process speaks these)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

MAX_SIGNATURES = 16  # a document carries its signer's and its seal's; a few more for approvals
MAX_CRL_URLS = 8  # CRL addresses one signature's path may have fetched
MAX_SHOWN = 200  # characters of a name or reason from a PDF repeated in a refusal
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
    crl_urls: tuple[str, ...] = ()  # its trusted path's CRLs (for the parent to fetch and weigh)
    # the trusted path's revocation by the CRLs the child had (a RevocationState's value: good,
    # revoked, unknown, not_checked; "" for a path not trusted), for the parent's "hard" to weigh
    revocation: str = ""
    revocation_detail: str = ""

    def as_json(self) -> dict:
        facts = asdict(self)
        del facts["crl_urls"], facts["revocation_detail"]
        return facts


@dataclass(frozen=True)
class PdfReport:
    """The verdict on one PDF: its signatures, or why none could be judged."""

    signatures: tuple[PdfSignature, ...] = ()
    problem: str | None = None  # not a PDF, unreadable, too large to check in time or memory
    # the CRLs the trusted signers' paths name, each with its CA's certificate (DER): fetched,
    # then judged again; a CRL served there is kept only if that CA signed it
    crl_issuers: tuple[tuple[str, bytes], ...] = ()
    transient: bool = False  # the reader gave up (time, memory, died) or a CRL could not be had: ask again later

    @property
    def crl_urls(self) -> tuple[str, ...]:
        return tuple(url for url, _ in self.crl_issuers)

    @property
    def valid(self) -> bool:
        """At least one signature, and every one valid."""
        return self.problem is None and bool(self.signatures) and all(s.valid for s in self.signatures)

    def refusal(self, name: str) -> str | None:
        """Why ``require`` refuses the document for this PDF, or None."""
        if self.valid:
            return None
        if self.problem is not None:
            return f"{name[:MAX_SHOWN]}: {self.problem[:MAX_SHOWN]}"
        if not self.signatures:
            return f"{name[:MAX_SHOWN]}: the PDF is not signed"
        bad = next(s for s in self.signatures if not s.valid)
        signer = (bad.signer or "an unnamed signer")[:MAX_SHOWN]
        return f"{name[:MAX_SHOWN]}: signature {bad.field[:MAX_SHOWN]!r} by {signer}: {bad.detail[:MAX_SHOWN]}"
