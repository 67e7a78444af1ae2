"""The admin and document-system commands that change a gateway's state without the daemon:
send, respond, recall, retry, abandon (health.py and listing.py answer the questions). They
share the daemon's database (SQLite in WAL mode takes both) and leave the sending itself to
the daemon's workers."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.daemon import compose
from gateway.daemon.outgoing import Local, new_source_key
from gateway.errors import UsageError
from gateway.store import Incoming, OutgoingState

# How long a command waits for the record of a document whose inbox folder is already there.
INBOX_RECORD_WAIT = 10.0


def _open(config: Config) -> Local:
    return Local.open(config)


def _close(local: Local) -> None:
    local.store.close()


def send(
    config: Config,
    *,
    to: list[str],
    subject: str,
    files: list[Path],
    code_number: str | None,
    code_notation: str | None,
    paper: bool,
) -> str:
    local = _open(config)
    try:
        inputs = []
        for path in files:
            try:
                inputs.append(compose.FileInput(path.name, path.read_bytes()))
            except OSError as exc:
                raise UsageError(f"{path} cannot be read: {exc.strerror}", where=str(path)) from None
        job: dict[str, Any] = {"to": to, "subject": subject, "paper": paper}
        if code_number:
            job["code_number"] = code_number
        if code_notation:
            job["code_notation"] = code_notation
        composed = compose.compose_document(
            job, inputs, sender=local.me, names=local.names, sequence=local.outgoing.next_number(), where="send"
        )
        item = local.outgoing.enqueue(local.outgoing.sign_document(composed), new_source_key("cli"))
        return item.document_id
    finally:
        _close(local)


def _received(local: Local, reference: str) -> tuple[Any, edxml.Document]:
    row = local.store.incoming.delivered(reference)
    if row is None and _in_the_inbox(local, reference):
        # The folder appears first and the database records it a moment later (a crash in
        # between redelivers into the same folder): a document system that answers at once
        # must not be told the document it holds was never delivered.
        deadline = time.monotonic() + INBOX_RECORD_WAIT
        while row is None and time.monotonic() < deadline:
            time.sleep(0.05)
            row = local.store.incoming.delivered(reference)
    if row is None:
        raise UsageError(f"no delivered document {reference!r} (give its inbox folder name or DocumentId)")
    envelope = local.inbox / (row.inbox_id or row.axis_doc_id) / "envelope.edxml"
    document = edxml.read_unchecked(envelope.read_bytes(), limits=local.limits)
    assert isinstance(document, edxml.Document)
    return row, document


def _in_the_inbox(local: Local, reference: str) -> bool:
    name = Path(reference).name
    return name == reference and not name.startswith(".") and (local.inbox / name / "document.json").is_file()


def respond(config: Config, reference: str, *, code: str, description: str | None, staff: str | None) -> str:
    status_code = edxml.StatusCode.from_wire(code)
    if status_code in (edxml.StatusCode.ARRIVED, edxml.StatusCode.RECALL_REQUESTED):
        raise UsageError(f"status {code} is not answered by hand: 01 is sent on delivery, 13 by `recall`")
    local = _open(config)
    try:
        row, document = _received(local, reference)
        earlier = [
            edxml.StatusCode.from_wire(s.status_code)
            for s in local.store.reports.statuses_answering([row.axis_doc_id])
            if s.status_code and s.state is not OutgoingState.ABANDONED
        ]
        requests = _change_requests(local, row, document)
        refusal = compose.answer_refusal(status_code, earlier, description, requests=requests)
        if refusal is not None:
            raise UsageError(f"status {code} for {document.document_id or row.axis_doc_id}: {refusal}")
        status = compose.status_for(
            document,
            sender=local.me,
            code=status_code,
            description=description,
            staff=staff,
            fallback_document_id=row.axis_doc_id,
        )
        local.outgoing.enqueue(
            local.outgoing.sign_status(status, answers=row.axis_doc_id), new_source_key(f"respond:{code}")
        )
        return document.document_id or row.axis_doc_id
    finally:
        _close(local)


def _change_requests(local: Local, row: Incoming, document: edxml.Document) -> int:
    """What a 15 or 16 may answer: each recall (13) received, and the document itself when it
    updates or replaces another. A recall counts from its inbox event, which the document
    system sees a moment before the record is committed."""
    recorded = local.store.reports.recalls_received([document.document_id] if document.document_id else [])
    events = local.inbox / (row.inbox_id or row.axis_doc_id) / "events"
    noted = len(list(events.glob("*-13.json"))) if events.is_dir() else 0
    changes = (edxml.BusinessDocType.UPDATE, edxml.BusinessDocType.REPLACE)
    changing = document.business is not None and document.business.business_doc_type in changes
    return max(recorded, noted) + int(changing)


def recall(config: Config, document_id: str, *, reason: str) -> list[str]:
    local = _open(config)
    try:
        sent = local.store.outgoing.sent_document(document_id)
        if sent is None:
            raise UsageError(f"no document {document_id!r} was sent by this local")
        document = edxml.read_unchecked(local.store.outgoing.file(sent).read_bytes(), limits=local.limits)
        assert isinstance(document, edxml.Document)
        recipients = []
        for status in compose.recall_requests(document, sender=local.me, reason=reason):
            local.outgoing.enqueue(local.outgoing.sign_status(status, answers=sent.id), new_source_key("recall"))
            recipients.extend(edxml.routed_to(status))
        return recipients
    finally:
        _close(local)


def abandon(config: Config, document_id: str, *, reason: str, by: str | None = None) -> int:
    """Give up on a failed message for good: it stays in the record as abandoned, with who and why."""
    if not reason.strip():
        raise UsageError("say why the message is abandoned (--reason): the record keeps it")
    local = _open(config)
    try:
        items = local.store.outgoing.abandon(document_id, by=by or who_runs_this(), reason=reason.strip())
        if not items:
            raise UsageError(f"{_no_failed(local, document_id)} (only a failed message can be abandoned)")
        for item in items:
            local.log.warning(
                "message_abandoned", document_id=item.document_id, by=item.abandoned_by, reason=item.abandon_reason
            )
        return len(items)
    finally:
        _close(local)


def retry(config: Config, document_id: str) -> int:
    local = _open(config)
    try:
        items = local.store.outgoing.requeue(document_id, config.retry.deadline_hours * 3600)
        if not items:
            raise UsageError(_no_failed(local, document_id))
        return len(items)
    finally:
        _close(local)


def who_runs_this() -> str:
    """The person behind a command: the account that ran sudo, as well as the one it ran as."""
    account = getpass.getuser()
    person = os.environ.get("SUDO_USER")
    return f"{person} (as {account})" if person and person != account else account


def _no_failed(local: Local, document_id: str) -> str:
    """Why nothing moved: nothing known by that name, or every message of it in another state."""
    states = sorted({item.state for item in local.store.outgoing.for_document(document_id)})
    if not states:
        return f"no message {document_id!r} was queued here"
    return f"no failed message {document_id!r}: it is {', '.join(states)}"
