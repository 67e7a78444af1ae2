"""The inbox contract: how received documents reach the document system.

``inbox/ID/`` holds ``envelope.edxml`` (the bytes as received), ``document.json`` (the
parsed header) and ``attachments/`` (files under sanitised names). It is written in a
hidden ``inbox/.tmp-ID`` folder, fsynced, and renamed into place, so a reader never sees
half a document; an existing ``inbox/ID`` means it was delivered already. Refused
messages go to ``inbox/.rejected/ID/`` with the reason; later events about a delivered
document (a recall request) appear as ``inbox/ID/events/*.json``, each written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway import edxml
from gateway.edxml.revocation import RevocationVerdict
from gateway.errors import DeliveryError
from gateway.fsutil import fsync_dir, take_group, write_atomic
from gateway.pdfsig.verdict import PdfReport

DOCUMENT_JSON = "document.json"
ENVELOPE = "envelope.edxml"


# What the gateway writes in the inbox the document system may read, move and remove: its
# account is in the inbox's group (edxml-exchange, docs/intake.md). Set explicitly, whatever the
# service's UMask; no setgid bit (the units forbid setting it), so each folder and file made is
# given the group of the folder it is made in, as a setgid folder would give it.
SHARED_FILE_MODE = 0o660
SHARED_FOLDER_MODE = 0o770


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        take_group(handle.fileno(), path.parent)
        os.fchmod(handle.fileno(), SHARED_FILE_MODE)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _shared_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    take_group(path, path.parent)
    path.chmod(SHARED_FOLDER_MODE)


def folder_name(sender: str, document_id: str | None, axis_doc_id: str) -> str:
    """The inbox folder of a document: one per (sender, DocumentId), whatever copy of it arrives.

    Readable (the DocumentId made safe) and unique (a digest of the exact pair), so that two
    copies from the axis, or a retry after a crash, land in the same folder and never in two.
    """
    if not document_id:
        return axis_name(axis_doc_id)
    digest = hashlib.sha256(f"{sender}\n{document_id}".encode()).hexdigest()[:10]
    readable = edxml.safe_file_name(document_id.replace("/", "-").replace(",", "_"), fallback="document")
    return f"{readable[:90]}-{digest}"


def axis_name(axis_doc_id: str) -> str:
    """The axis's docId as a file name: itself when it is one; else what is safe of it and a
    digest of it, so that no docId an axis makes up ("x/../../victim") names a path outside
    the inbox, and two docIds made safe alike still name two files."""
    safe = edxml.safe_file_name(axis_doc_id, fallback="message")
    if safe == axis_doc_id:
        return safe
    return f"{safe[:90]}-{hashlib.sha256(axis_doc_id.encode()).hexdigest()[:10]}"


def recorded_name(inbox_id: str | None, axis_doc_id: str) -> str:
    """The inbox folder's name of a delivered message's record: its own, or (a record older
    than inbox_id) the one its axis docId gives."""
    return inbox_id or axis_name(axis_doc_id)


def _unique_names(attachments: tuple[edxml.Attachment, ...]) -> list[str]:
    """Safe, distinct file names: a second "a.pdf" becomes "a (2).pdf"."""
    used: set[str] = set()
    names = []
    for attachment in attachments:
        name = edxml.safe_file_name(attachment.attachment_name)
        stem, dot, extension = name.rpartition(".")
        if not dot:
            stem, extension = name, ""
        candidate, counter = name, 1
        while candidate.lower() in used:
            counter += 1
            candidate = f"{stem} ({counter}){dot}{extension}"
        used.add(candidate.lower())
        names.append(candidate)
    return names


def describe(
    document: edxml.Document,
    *,
    inbox_id: str,
    axis_doc_id: str,
    signature: edxml.SignatureVerdict,
    files: list[str],
    pdf: tuple[PdfReport | None, ...] = (),
    revocation: RevocationVerdict | None = None,
) -> dict[str, Any]:
    """document.json: the header a document system needs, without parsing edXML."""
    other = document.other_info
    business = document.business
    return {
        "id": inbox_id,
        "axis_doc_id": axis_doc_id,
        "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "from": {"code": document.sender.organ_id.text, "name": document.sender.organ_name},
        "to": [{"code": t.organ_id.text, "name": t.organ_name} for t in document.to],
        "document_id": document.document_id,
        "subject": document.subject,
        "code": None
        if document.code is None
        else {"number": document.code.code_number, "notation": document.code.code_notation},
        "promulgation": None
        if document.promulgation_info is None
        else {
            "place": document.promulgation_info.place,
            "date": _date(document.promulgation_info.promulgation_date),
        },
        "document_type": None
        if document.document_type is None
        else {
            "type": document.document_type.type,
            "type_detail": document.document_type.type_detail,
            "type_name": document.document_type.type_name,
        },
        "content": document.content,
        "signer": None
        if document.signer_info is None
        else {
            "competence": document.signer_info.competence,
            "position": document.signer_info.position,
            "full_name": document.signer_info.full_name,
        },
        "due_date": _date(document.due_date),
        "priority": None if other is None or other.priority is None else other.priority.value,
        "steering_type": None if document.steering_type is None else document.steering_type.value,
        "paper": document.paper,
        "business": None
        if business is None
        else {
            "type": business.business_doc_type.value,
            "meaning": business.business_doc_type.meaning,
            "document_id": business.document_id,
            "reason": business.business_doc_reason,
        },
        "response_for": [
            {"organ_id": r.organ_id.text if r.organ_id else None, "code": r.code, "document_id": r.document_id}
            for r in document.response_for
        ],
        "signature": {
            "state": signature.state.value,
            "signer": signature.signer,
            # TraceHeaders under the signature, and those relays appended after it (unsigned)
            "signed_hops": signature.signed_hops,
            "relay_hops": signature.relay_hops,
            "certificate_checked_at": signature.checked_at.isoformat() if signature.checked_at else None,
            "certificate": _certificate(signature.certificate),
            # whether the certificate was revoked when the axis accepted the document: good,
            # unknown (no current CRL; delivered under soft), not_checked (no CRL named, or off)
            "revocation": {"state": revocation.state.value, "detail": revocation.detail} if revocation else None,
        },
        "attachments": [
            {
                "file": f"attachments/{name}",
                "name": attachment.attachment_name,
                "content_type": attachment.content_type,
                "description": attachment.description,
                "size": len(attachment.data),
                "sha256": hashlib.sha256(attachment.data).hexdigest(),
                **_pdf_facts(pdf[index] if index < len(pdf) else None),
            }
            for index, (name, attachment) in enumerate(zip(files, document.attachments, strict=True))
        ],
    }


def _certificate(certificate: x509.Certificate | None) -> dict[str, str] | None:
    """Which certificate signed: what a clerk, or a court, asks when the signature is relied on."""
    if certificate is None:
        return None
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "sha256": certificate.fingerprint(hashes.SHA256()).hex(),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def _pdf_facts(report: PdfReport | None) -> dict[str, Any]:
    """A PDF's signatures as checked on arrival (nothing for an attachment that is no PDF)."""
    if report is None:
        return {}
    return {
        "pdf_signatures": [signature.as_json() for signature in report.signatures],
        "pdf_signed_validly": report.valid,
        "pdf_problem": report.problem,
    }


def _date(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def deliver(
    inbox: Path,
    inbox_id: str,
    envelope: bytes,
    document: edxml.Document,
    *,
    axis_doc_id: str,
    signature: edxml.SignatureVerdict,
    pdf: tuple[PdfReport | None, ...] = (),
    revocation: RevocationVerdict | None = None,
) -> Path:
    """Write inbox/ID atomically; idempotent (an existing inbox/ID is the earlier delivery,
    unless its document.json names another document: a DeliveryError then, never a document
    taken for delivered that was not written)."""
    final = inbox / inbox_id
    if final.is_dir():
        other = _other_document(final, document)
        if other is not None:
            raise DeliveryError(f"the inbox folder {final} holds another document ({other})", where=str(final))
        return final
    temp = inbox / f".tmp-{inbox_id}"
    try:
        shutil.rmtree(temp, ignore_errors=True)
        _shared_folder(temp)
        _shared_folder(temp / "attachments")
        names = _unique_names(document.attachments)
        for name, attachment in zip(names, document.attachments, strict=True):
            _write(temp / "attachments" / name, attachment.data)
        _write(temp / ENVELOPE, envelope)
        header = describe(
            document,
            inbox_id=inbox_id,
            axis_doc_id=axis_doc_id,
            signature=signature,
            files=names,
            pdf=pdf,
            revocation=revocation,
        )
        _write(temp / DOCUMENT_JSON, json.dumps(header, ensure_ascii=False, indent=2).encode())
        fsync_dir(temp / "attachments")
        fsync_dir(temp)
        os.rename(temp, final)
        fsync_dir(inbox)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise DeliveryError(f"cannot write {final}: {exc.strerror or exc}", where=str(final)) from None
    return final


def _other_document(folder: Path, document: edxml.Document) -> str | None:
    """What document.json in ``folder`` names when it is not ``document`` (its folder name was
    found for another sender and DocumentId: the name's digest is short enough to be searched
    for); None when it is the same, or when the document system took the file away."""
    try:
        header = json.loads((folder / DOCUMENT_JSON).read_bytes())
        sender, document_id = header["from"]["code"], header["document_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (sender, document_id) == (document.sender.organ_id.text, document.document_id):
        return None
    return f"from {sender}, DocumentId {document_id}"


def reject(inbox: Path, axis_doc_id: str, envelope: bytes | None, reason: str, details: dict[str, Any]) -> Path:
    """Keep a refused message for the admin: inbox/.rejected/<the axis's docId>/ with the reason."""
    name = axis_name(axis_doc_id)
    folder = inbox / ".rejected" / name
    if folder.is_dir():
        return folder
    temp = inbox / ".rejected" / f".tmp-{name}"
    try:
        shutil.rmtree(temp, ignore_errors=True)
        _shared_folder(temp)
        if envelope is not None:
            _write(temp / ENVELOPE, envelope)
        _write(temp / "reason.txt", (reason + "\n").encode())
        _write(
            temp / "rejection.json", json.dumps({"reason": reason, **details}, ensure_ascii=False, indent=2).encode()
        )
        fsync_dir(temp)
        os.rename(temp, folder)
        fsync_dir(folder.parent)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise DeliveryError(f"cannot write {folder}: {exc.strerror or exc}", where=str(folder)) from None
    return folder


def add_event(inbox: Path, inbox_id: str, name: str, event: dict[str, Any]) -> Path | None:
    """An event about a delivered document (a recall request), written atomically; None if not delivered."""
    folder = inbox / inbox_id
    try:  # never its parents: a folder the document system took away is not made again, empty
        (folder / "events").mkdir(exist_ok=True)
    except FileNotFoundError:
        return None
    take_group(folder / "events", folder)
    (folder / "events").chmod(SHARED_FOLDER_MODE)
    path = folder / "events" / f"{edxml.safe_file_name(name)}.json"
    write_atomic(path, json.dumps(event, ensure_ascii=False, indent=2).encode(), mode=SHARED_FILE_MODE)
    take_group(path, folder / "events")
    return path


def remove_temporary(inbox: Path) -> int:
    """Half-written deliveries of a process that died: they are written again from the database."""
    removed = 0
    for parent in (inbox, inbox / ".rejected"):
        if not parent.is_dir():
            continue
        for path in parent.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
