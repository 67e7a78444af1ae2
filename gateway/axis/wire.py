"""What the axis records and answers about a message, as values: pure, no I/O.

The row a sendEdoc becomes (its dedup key: a resend of the same document is the same
row), and the items of the list and sent-list answers in the SDK's field names (facts §5.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway import edxml
from gateway.axis.records import Delivery, NewDocument
from gateway.vxp.answers import AxisCode
from gateway.vxp.vocabulary import DeliveryState, MessageType


class Refusal(Exception):
    def __init__(self, code: AxisCode, detail: str | None = None) -> None:
        super().__init__(detail or code.meaning)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Checked:
    """A message that passed the door, with its relayed bytes (in pieces: a large message's
    attachments are views of the upload as read, not copies)."""

    message: edxml.Message
    relayed: tuple[bytes | memoryview, ...]
    relayed_sha256: str
    relayed_size: int
    submitted_sha256: str  # of the bytes as the sender sent them: what a resend repeats
    signature: edxml.SignatureVerdict | None = None  # when the axis verifies: whose, along which path


def new_document(
    system_id: str, message: edxml.Message, message_type: MessageType, recipients: tuple[str, ...], checked: Checked
) -> NewDocument:
    sender = message.sender.organ_id.text
    if isinstance(message, edxml.Document):
        identity = message.document_id or checked.submitted_sha256
        title, notation, status_code = message.subject, (message.code.code_notation or "") if message.code else "", ""
        document_id = message.document_id
    else:
        answered = message.response_for
        stamp = message.timestamp.isoformat() if message.timestamp else ""
        identity = f"{answered.document_id}|{answered.organ_id}|{message.status_code.wire}|{stamp}"
        title, notation, status_code = message.description or "", "", message.status_code.wire
        document_id = answered.document_id
    return NewDocument(
        message_type=message_type,
        system_id=system_id,
        from_code=sender,
        dedup_key=f"{sender}|{message_type}|{identity}",
        document_id=document_id,
        title=title,
        notation=notation,
        status_code=status_code,
        sha256=checked.relayed_sha256,
        size=checked.relayed_size,
        recipients=recipients,
    )


def _time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, edxml.VIETNAM).strftime("%Y/%m/%d %H:%M:%S")


def listed(d: Delivery) -> dict[str, Any]:
    return {
        "docId": d.doc_id,
        "serviceType": "eDoc",
        "messageType": d.message_type,
        "created_time": _time(d.created_at),
        "updated_time": _time(d.updated_at),
        "from": d.from_code,
        "to": d.to_code,
        "status": d.state,
        "status_desc": d.state.meaning,
    }


def sent(d: Delivery) -> dict[str, Any]:
    return {
        "serviceType": "eDoc",
        "messageType": d.message_type,
        "senderDocId": d.sender_doc_id,
        "receiverDocId": d.doc_id,
        "fromCode": d.from_code,
        "toCode": d.to_code,
        "title": d.title,
        "notation": d.notation,
        "sentTime": _time(d.created_at),
        "receivedTime": _time(d.done_at),
        "sendStatus": DeliveryState.DONE,  # accepted by the axis: sending is done
        "sendStatusDesc": "accepted by the axis",
        "receiveStatus": d.state,
        "receiveStatusDesc": d.state.meaning,
    }


def parent_code(code: str, known: set[str]) -> str:
    agency = edxml.AgencyCode(code)
    if not agency.is_qd20:
        return ""
    parent = agency.parent
    return parent.text if parent is not None and parent.text in known else ""
