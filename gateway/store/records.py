"""The rows of the gateway database as values: what was sent, received and answered."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields

from gateway.store.states import IncomingState, OutgoingState
from gateway.vxp.vocabulary import MessageType


@dataclass(frozen=True)
class Outgoing:
    id: str
    kind: MessageType
    document_id: str
    source_key: str
    file: str
    state: OutgoingState
    axis_doc_id: str | None
    attempts: int
    next_attempt_at: float
    deadline_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None
    subject: str
    status_code: str | None
    paper: int
    digitized: int
    to_codes: tuple[str, ...]
    answers: str | None
    document_time: str | None = None
    abandoned_at: float | None = None
    abandoned_by: str | None = None  # the account that ran `abandon`
    abandon_reason: str | None = None
    content_digest: str | None = None
    from_code: str | None = None  # the hosted agency that sends it


@dataclass(frozen=True)
class Incoming:
    axis_doc_id: str
    message_type: MessageType
    state: IncomingState
    acked: int
    from_code: str
    document_id: str | None
    subject: str | None
    status_code: str | None
    reason: str | None
    attempts: int
    next_attempt_at: float
    listed_at: float
    finished_at: float | None
    inbox_id: str | None
    paper: int
    digitized: int
    document_time: str | None = None
    accepted_at: float | None = None  # when the axis says it accepted the message (epoch seconds)
    to_code: str | None = None  # the hosted agency it is for
    pdf_signed: int | None = None  # its PDFs' signatures: 1 all valid, 0 not all, None no PDF
    answering: str | None = None  # what answering it needs, kept at delivery (None before v9)


@dataclass(frozen=True)
class Receipt:
    outgoing_id: str
    from_code: str
    status_code: str
    description: str | None
    status_time: str | None
    received_at: float
    axis_doc_id: str


@dataclass(frozen=True)
class NewOutgoing:
    """What the queue records about a signed message, beside its bytes or its file."""

    kind: MessageType
    document_id: str
    subject: str
    to_codes: tuple[str, ...]
    status_code: str | None = None
    paper: bool = False
    digitized: bool = False
    answers: str | None = None  # the axis DocId (or our id) of the message a status answers
    document_time: str | None = None
    content_digest: str | None = None  # of a document's content: what tells a resend from another document
    from_code: str | None = None  # the hosted agency that signs and sends it

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MessageType(self.kind))  # "edoc" from a caller is the same type


@dataclass(frozen=True)
class Settled:
    """How a listed incoming message ended, and what is known of it."""

    state: IncomingState
    from_code: str
    document_id: str | None = None
    subject: str | None = None
    status_code: str | None = None
    reason: str | None = None
    inbox_id: str | None = None
    paper: bool = False
    digitized: bool = False
    document_time: str | None = None
    pdf_signed: bool | None = None  # its PDF attachments all validly signed; None: it has none
    answering: str | None = None  # a delivered document: what answering it needs (compose.answering_record)


def outgoing_row(row: sqlite3.Row) -> Outgoing:
    values = dict(row)
    values["to_codes"] = tuple(json.loads(values["to_codes"]))
    values["kind"] = MessageType(values["kind"])
    values["state"] = OutgoingState(values["state"])
    return Outgoing(**values)


_INCOMING_FIELDS = frozenset(f.name for f in fields(Incoming))


def incoming_row(row: sqlite3.Row) -> Incoming:
    # only the columns this version knows: a database a newer gateway migrated stays readable
    values = {name: value for name, value in dict(row).items() if name in _INCOMING_FIELDS}
    values["message_type"] = MessageType(values["message_type"])
    values["state"] = IncomingState(values["state"])
    return Incoming(**values)
