"""The demo's signatures of legal value: its CA publishes CRLs (`pki serve`), each document
carries a PDF its sender signed (pyHanko, the sender's development key), one of them changed
after signing, and every recipient's inbox says what it found (document.json ``pdf_signatures``)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from pathlib import Path

from gateway.pdfsig.signing import alter_after_signing, sample_pdf, sign_pdf
from gateway.processes import Service

ALTERED = 2  # the document whose PDF is changed after it was signed


def signed_pdf(pki: Path, sender: str, number: int, subject: str) -> bytes:
    text = f"Document {number}: {subject.encode('ascii', 'ignore').decode().strip() or 'van ban'}"
    signed = sign_pdf(sample_pdf(text), (pki / f"{sender}.key").read_bytes(), (pki / f"{sender}.pem").read_bytes())
    return alter_after_signing(signed) if number == ALTERED else signed


def verdicts(inboxes: Iterable[tuple[str, Path]]) -> list[tuple[str, str, bool, str]]:
    """(recipient, subject, signed validly, why not) of every PDF delivered into ``inboxes``."""
    found = []
    for code, inbox in inboxes:
        if not inbox.is_dir():
            continue
        for described in sorted(inbox.glob("*/document.json")):
            document = json.loads(described.read_text(encoding="utf-8"))
            for attachment in document.get("attachments", []):
                if "pdf_signatures" not in attachment:
                    continue
                reasons = [s["detail"] for s in attachment["pdf_signatures"] if not s["valid"]]
                why = (
                    attachment.get("pdf_problem")
                    or "; ".join(reasons)
                    or ("" if attachment["pdf_signatures"] else "unsigned")
                )
                found.append((code, document["subject"], bool(attachment["pdf_signed_validly"]), why))
    return found


def reserve_port() -> socket.socket:
    """A port on 127.0.0.1 held for the CRL server until it listens: the certificates name it
    before the server starts, and a port merely found free may be taken meanwhile by another
    program (a parallel test's axis). The socket is bound with SO_REUSEADDR and never listens,
    so `pki serve` (aiohttp binds with SO_REUSEADDR too) can take the port while we hold it,
    and the kernel gives the port to no one else; close it once the server is up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_crls(root: Path, port: int) -> Service:
    """`edxml-gateway pki serve` for the demo's PKI: every gateway and axis judges revocation by it."""
    service = Service(
        ["pki", "serve", "--dir", str(root / "pki"), "--listen", f"127.0.0.1:{port}"],
        cwd=root,
        log_path=root / "crl.log",
    )
    service.wait_for(lambda e: e.get("event") == "crl_serving", "the CRL server")
    return service
