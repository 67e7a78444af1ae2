"""sendEdoc's last steps, for the one message of a call or the several of a batch
(multisend.py): who may send it to whom, its relayed copy written, the document and its
deliveries recorded, and only then its DocId answered.

The messages of one call are judged one after the other, in the order they came; their files
are written in one worker-thread hand-off with one sync of the folder; their records are
submitted together, so the group commit (gateway/sqlite.py) makes them durable with one
COMMIT, each in a savepoint of its own: one that fails is refused alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.axis import checks
from gateway.axis.records import NewDocument
from gateway.axis.wire import Checked, Refusal, new_document
from gateway.fsutil import fsync_dir, write_atomic
from gateway.vxp.answers import AxisCode
from gateway.vxp.protocol import SignedRequest, parse_json
from gateway.vxp.vocabulary import MessageType

if TYPE_CHECKING:
    from gateway.axis.server import Axis


@dataclass(frozen=True)
class Admitted:
    """A message the axis takes, not yet written or recorded."""

    sender_doc_id: str
    path: Path
    document: NewDocument
    outside: tuple[str, ...]  # recipients delivered through the upstream axis
    checked: Checked
    log: Any


async def accept(
    axis: Axis,
    signed: SignedRequest,
    judged: Sequence[Checked | Refusal],
    message_type: MessageType,
    to: Sequence[str | None],
) -> list[str | Refusal]:
    """Each message's DocId (a resend's is the one it had), or why it is refused, in order.
    ``to``: each message's sendEdoc ``to`` (None: all its recipients)."""
    outcomes: list[str | Refusal | Admitted | Exception] = []
    for item, wanted in zip(judged, to, strict=True):
        if isinstance(item, Refusal):
            outcomes.append(item)
            continue
        try:
            await axis.check.judge_revocation(item)
            outcomes.append(await _admit(axis, signed, item, message_type, wanted))
        except Refusal as refusal:
            outcomes.append(refusal)
        except Exception as exc:  # a bug or the database: this message alone is refused (20)
            outcomes.append(exc)
    admitted = [outcome for outcome in outcomes if isinstance(outcome, Admitted)]
    if admitted:
        await asyncio.to_thread(_write, admitted)
        recorded = await asyncio.gather(*(_record(axis, each) for each in admitted), return_exceptions=True)
        by_id = {each.sender_doc_id: result for each, result in zip(admitted, recorded, strict=True)}
        outcomes = [by_id[o.sender_doc_id] if isinstance(o, Admitted) else o for o in outcomes]
    answered: list[str | Refusal] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Refusal):
            if not isinstance(outcome, Exception):
                raise outcome  # a cancellation: the caller is going away
            axis.log.error("internal_error", call="sendEdoc", system=signed.system_id, exc_info=outcome)
            outcome = Refusal(AxisCode.INTERNAL, type(outcome).__name__)
        assert isinstance(outcome, str | Refusal)
        answered.append(outcome)
    return answered


async def _admit(
    axis: Axis, signed: SignedRequest, checked: Checked, message_type: MessageType, wanted: str | None
) -> Admitted | str:
    """The message admitted, or the DocId it already has (a resend), or a Refusal raised."""
    message = checked.message
    sender = message.sender.organ_id.text
    if sender not in axis.store.agencies_of(signed.system_id):
        raise Refusal(AxisCode.SENDER_NOT_ALLOWED, f"{sender} is not an agency of system {signed.system_id}")
    recipients = only(checks.recipients(message), wanted)
    outside, unserved = [], []
    for code in recipients:
        agency = axis.store.agency(code)
        if agency is not None and agency.locked:
            raise Refusal(AxisCode.RECIPIENT_LOCKED, code)
        if agency is not None and agency.system_id is not None:
            continue  # delivered here
        if axis.bridge is not None and await axis.bridge.may_forward(code):
            outside.append(code)  # delivered through the upstream axis
        elif agency is None:
            raise Refusal(AxisCode.UNKNOWN_RECIPIENT, code)
        else:
            unserved.append(code)  # in the directory, served by no system yet (registerAgency)
    document = new_document(signed.system_id, message, message_type, recipients, checked)
    log = axis.log.bind(agency=sender, peer=list(recipients), system=signed.system_id, message_type=message_type)
    if unserved:  # its deliveries wait, listed to no one, until a system takes the agency on
        log.warning("recipient_unserved", unserved=unserved, document_id=document.document_id)
    duplicate = axis.store.find_duplicate(document.dedup_key)
    if duplicate is not None:
        return _resent(duplicate, recipients, log)
    sender_doc_id, path = axis.store.new_document_path()
    return Admitted(sender_doc_id, path, document, tuple(outside), checked, log)


def _write(admitted: Sequence[Admitted]) -> None:
    """Worker thread: every relayed copy, each synced, then their folder once; none of them
    left behind when one cannot be written (no row will name them)."""
    try:
        for each in admitted:
            write_atomic(each.path, each.checked.relayed, sync_folder=False)
        for folder in {each.path.parent for each in admitted}:
            fsync_dir(folder)
    except BaseException:
        for each in admitted:
            each.path.unlink(missing_ok=True)
        raise


async def _record(axis: Axis, admitted: Admitted) -> str:
    store, document = axis.store, admitted.document
    try:
        doc_ids = await store.commits.run(
            lambda: store.record_document(admitted.sender_doc_id, document, forward_to=admitted.outside)
        )
    except sqlite3.IntegrityError:
        admitted.path.unlink(missing_ok=True)  # the same document won a race with this one
        duplicate = store.find_duplicate(document.dedup_key)
        if duplicate is None:
            raise
        return _resent(duplicate, document.recipients, admitted.log)
    axis.long_polls.arrived(document.recipients)
    if admitted.outside and axis.bridge is not None:
        axis.bridge.wake()
    admitted.log.info(
        "document_accepted",
        axis_doc_id=admitted.sender_doc_id,
        deliveries=doc_ids,
        document_id=document.document_id,
        bytes=document.size,
        forwarded_to=list(admitted.outside) or None,
    )
    return admitted.sender_doc_id


def _resent(duplicate: tuple[str, tuple[str, ...]], recipients: tuple[str, ...], log: Any) -> str:
    sender_doc_id, earlier_recipients = duplicate
    if tuple(sorted(recipients)) != earlier_recipients:
        raise Refusal(AxisCode.BAD_REQUEST, "this DocumentId was already sent to other recipients")
    log.info("document_duplicate", axis_doc_id=sender_doc_id)
    return sender_doc_id


def only(recipients: tuple[str, ...], wanted: str | None) -> tuple[str, ...]:
    """sendEdoc's optional ``to`` (a JSON array, or codes separated by commas): deliver to these
    of the message's recipients only (what a relay sends on for its outside recipients)."""
    if not wanted or not wanted.strip():
        return recipients
    text = wanted.strip()
    try:
        codes = parse_json(text) if text.startswith("[") else [part.strip() for part in text.split(",")]
    except ValueError:
        raise Refusal(AxisCode.BAD_REQUEST, f"to is neither a JSON array nor a list of codes: {text[:80]!r}") from None
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise Refusal(AxisCode.BAD_REQUEST, "to must list agency codes")
    chosen = tuple(sorted({code.strip() for code in codes if code.strip()}))
    strays = [code for code in chosen if code not in recipients]
    if strays or not chosen:
        raise Refusal(AxisCode.BAD_REQUEST, f"to names {', '.join(strays) or 'nobody'}, not recipients of the file")
    return chosen
