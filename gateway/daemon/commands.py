"""The admin and document-system commands that change a gateway's state without the daemon:
send, respond, recall, retry, abandon (health.py and listing.py answer the questions). They
share the daemon's database (SQLite in WAL mode takes both) and leave the sending itself to
the daemon's workers."""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.daemon import compose, directory, inbox
from gateway.daemon.outgoing import Agency, Local, Pending, new_source_key
from gateway.errors import RecipientNotInDirectory, UsageError
from gateway.store import Incoming, OutgoingState
from gateway.store.reports import Agencies

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
    from_code: str | None = None,
) -> str:
    """Queue a document from hosted agency ``from_code`` (the installation's own by default)."""
    local = _open(config)
    try:
        agency = local.agency(from_code, option="--from")
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
        sequence = agency.outgoing.next_number()
        try:
            composed = compose.compose_document(
                job, inputs, sender=agency.me, names=local.names, sequence=sequence, where="send"
            )
        except RecipientNotInDirectory:
            # the directory as the daemon last read it (every few minutes) may predate an agency
            # registered since: ask the axis once before refusing
            names = directory.read_now(config)
            if names is None:
                raise
            local.names = names
            directory.remember(local.store, names)
            composed = compose.compose_document(
                job, inputs, sender=agency.me, names=names, sequence=sequence, where="send"
            )
        item = agency.outgoing.enqueue(agency.outgoing.sign_document(composed), new_source_key("cli"))
        return item.document_id
    finally:
        _close(local)


def _received_row(
    local: Local, reference: str, agency_code: str | None, *, wait: bool = True
) -> tuple[Incoming, Agency]:
    """The delivered document ``reference`` names (its inbox folder, a path to it, its DocumentId
    or axis DocId), and the hosted agency that received it: ``agency_code``, the one whose inbox
    a path points into, or the only one that received it. Reads the record only."""
    name, agency_code = _in_an_inbox(local, reference, agency_code)
    wanted = None if agency_code is None else local.agency(agency_code, option="--agency").code
    rows = _delivered(local, name, wanted)
    if not rows and wait and in_the_inbox(local, name, wanted):
        # The folder appears first and the database records it a moment later (a crash in
        # between redelivers into the same folder): a document system that answers at once
        # must not be told the document it holds was never delivered.
        deadline = time.monotonic() + INBOX_RECORD_WAIT
        while not rows and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = _delivered(local, name, wanted)
    if not rows:
        raise UsageError(f"no delivered document {reference!r} (give its inbox folder name or DocumentId)")
    if len(rows) > 1:
        codes = ", ".join(sorted(row.to_code or local.code for row in rows))
        raise UsageError(f"{reference!r} was delivered to {codes}: say which with --agency CODE", where="--agency")
    row = rows[0]
    return row, local.agency(row.to_code, option="--agency")


def _envelope(local: Local, agency: Agency, row: Incoming) -> edxml.Document:
    envelope = agency.inbox / inbox.recorded_name(row.inbox_id, row.axis_doc_id) / "envelope.edxml"
    try:
        data = envelope.read_bytes()
    except OSError as exc:
        raise UsageError(f"the received document cannot be read from {envelope}: {exc.strerror or exc}") from None
    document = edxml.read_unchecked(data, limits=local.limits)
    assert isinstance(document, edxml.Document)
    return document


def _delivered(local: Local, reference: str, agency_code: str | None) -> list[Incoming]:
    rows = local.store.incoming.delivered_to(reference)
    return [row for row in rows if agency_code is None or (row.to_code or local.code) == agency_code]


def _in_an_inbox(local: Local, reference: str, agency_code: str | None) -> tuple[str, str | None]:
    """A path into a hosted agency's inbox names the folder and the agency."""
    path = Path(reference.rstrip("/"))
    if path.name == reference:
        return reference, agency_code
    for agency in local.agencies.values():
        if path.parent.resolve() == agency.inbox.resolve():
            return path.name, agency_code or agency.code
    # a DocumentId has slashes too (its date, 2023/07/03): it is a path only if there is one
    return (path.name if _is_dir(path) else reference.rstrip("/")), agency_code


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name no file system holds (ENAMETOOLONG): no folder at all
        return False


def in_the_inbox(local: Local, name: str, agency_code: str | None) -> bool:
    return inbox_written_at(local, name, agency_code) is not None


def inbox_written_at(local: Local, name: str, agency_code: str | None) -> float | None:
    """When inbox folder ``name``'s document.json was written, None when there is none."""
    if name.startswith(".") or "/" in name:
        return None
    agencies = [local.agency(agency_code)] if agency_code else list(local.agencies.values())
    for agency in agencies:
        try:
            return (agency.inbox / name / "document.json").stat().st_mtime
        except OSError:  # none there, or a name no file system holds
            continue
    return None


def respond(
    config: Config,
    reference: str,
    *,
    code: str,
    description: str | None,
    staff: str | None,
    agency_code: str | None = None,
) -> str:
    """Answer a received document, signed by the hosted agency that received it."""
    local = _open(config)
    try:
        record = answering(local, reference, agency_code=agency_code)
        pending, document_id = signed_answer(local, record, code=code, description=description, staff=staff)
        record.agency.outgoing.enqueue(pending, new_source_key(f"respond:{code}"))
        return document_id
    finally:
        _close(local)


@dataclass(frozen=True)
class Answering:
    """What the record says about a document about to be answered: read on the thread that
    owns the connection (the event loop in the daemon), before the signing elsewhere."""

    row: Incoming
    agency: Agency
    earlier: tuple[edxml.StatusCode, ...]  # what was answered before (abandoned ones aside)
    recalls_recorded: int  # recalls (13) of it received


def answering(local: Local, reference: str, *, agency_code: str | None = None, wait: bool = True) -> Answering:
    row, agency = _received_row(local, reference, agency_code, wait=wait)
    earlier = tuple(
        edxml.StatusCode.from_wire(s.status_code)
        for s in local.store.reports.statuses_answering([row.axis_doc_id])
        if s.status_code and s.state is not OutgoingState.ABANDONED
    )
    recorded = local.store.reports.recalls_received(
        [row.document_id] if row.document_id else [], Agencies(local.code, frozenset({agency.code}))
    )
    return Answering(row, agency, earlier, recorded)


def signed_answer(
    local: Local, answering: Answering, *, code: str, description: str | None, staff: str | None
) -> tuple[Pending, str]:
    """The signed status answering the document (any thread: files and signing, no record):
    refused (UsageError) when it does not fit what was answered before. With its DocumentId."""
    status_code = edxml.StatusCode.from_wire(code)
    if status_code in (edxml.StatusCode.ARRIVED, edxml.StatusCode.RECALL_REQUESTED):
        raise UsageError(f"status {code} is not answered by hand: 01 is sent on delivery, 13 by `recall`")
    row, agency = answering.row, answering.agency
    if row.answering:
        response_for, changing = compose.read_answering_record(row.answering)
    else:  # delivered by a gateway before v9 kept this in the record: the envelope says it
        document = _envelope(local, agency, row)
        response_for = compose.answered(document, fallback_document_id=row.axis_doc_id)
        changing = compose.changes_another(document)
    requests = _change_requests(answering, changing) if status_code in compose.CHANGE_ANSWERS else 0
    document_id = response_for.document_id or row.axis_doc_id
    refusal = compose.answer_refusal(status_code, answering.earlier, description, requests=requests)
    if refusal is not None:
        raise UsageError(f"status {code} for {document_id}: {refusal}")
    status = compose.status_for(response_for, sender=agency.me, code=status_code, description=description, staff=staff)
    return agency.outgoing.sign_status(status, answers=row.axis_doc_id), document_id


def reads_no_files(answering: Answering, code: str) -> bool:
    """Whether :func:`signed_answer` reads nothing from the disk for a status ``code``: the record
    says what is answered (kept since store v9), and the code is not one that counts the recalls
    noted in the inbox (15, 16). Such an answer may be signed where no file may be waited for."""
    return bool(answering.row.answering) and code not in {answer.wire for answer in compose.CHANGE_ANSWERS}


def _change_requests(answering: Answering, changing: bool) -> int:
    """What a 15 or 16 may answer: each recall (13) received, and the document itself when it
    updates or replaces another (``changing``). A recall counts from its inbox event, which the
    document system sees a moment before the record is committed."""
    row = answering.row
    events = answering.agency.inbox / inbox.recorded_name(row.inbox_id, row.axis_doc_id) / "events"
    noted = len(list(events.glob("*-13.json"))) if events.is_dir() else 0
    return max(answering.recalls_recorded, noted) + int(changing)


def recall(config: Config, document_id: str, *, reason: str) -> tuple[list[str], list[str]]:
    """Status 13 to each recipient of a document this installation sent: the recipients it was
    queued for now, and those it was queued for before (a recall is asked once per recipient:
    asked again after a crash in the middle, it goes only to those it had not reached)."""
    local = _open(config)
    try:
        sent = local.store.outgoing.sent_document(document_id)
        if sent is None:
            raise UsageError(f"no document {document_id!r} was sent by this installation")
        if sent.state is not OutgoingState.SENT:
            # statuses and documents go out apart: a 13 could reach a recipient before the
            # document, be refused there, and the document then be delivered all the same
            raise UsageError(
                f"{document_id} is {sent.state}, not sent yet: a recall could reach its recipients before it;"
                " recall it once it is sent, or `abandon` it so that it never goes"
            )
        agency = local.receiving(sent.from_code)  # the recall is signed by the agency that sent the document
        if agency is None:
            raise UsageError(
                f"{document_id} was sent by {sent.from_code}, which this installation no longer hosts:"
                " its key would sign the recall"
            )
        document = edxml.read_unchecked(local.store.outgoing.signed(sent), limits=local.limits)
        assert isinstance(document, edxml.Document)
        queued: list[str] = []
        before: list[str] = []
        for status in compose.recall_requests(document, sender=agency.me, reason=reason):
            recipients = edxml.routed_to(status)
            key = f"recall:{sent.id}:{','.join(recipients)}"
            if local.store.outgoing.by_source(key) is not None:
                before.extend(recipients)
                continue
            agency.outgoing.enqueue(agency.outgoing.sign_status(status, answers=sent.id), key)
            queued.extend(recipients)
        return queued, before
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
