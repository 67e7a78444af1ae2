"""What the axis's store hands out and takes in: agencies, documents to record, deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.vxp.vocabulary import DeliveryState, MessageType


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    mail: str
    system_id: str | None
    locked: bool
    source: str  # "config" or "registered"
    parent: str | None = None  # the parent agency's code, as registered (registerAgency's pcode)


@dataclass(frozen=True)
class NewDocument:
    """What the server has checked and wants recorded, with its recipients."""

    message_type: MessageType
    system_id: str
    from_code: str
    dedup_key: str
    document_id: str | None
    title: str
    notation: str
    status_code: str
    sha256: str
    size: int
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Delivery:
    """One recipient's copy of an accepted message: its axis docId and where it stands."""

    doc_id: str
    sender_doc_id: str
    to_code: str
    from_code: str
    message_type: MessageType
    state: DeliveryState
    created_at: float
    updated_at: float
    fetched_at: float | None
    done_at: float | None
    file: str
    size: int  # of the stored (relayed) copy
    title: str
    notation: str
    system_id: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Delivery:
        values = dict(row)
        values["message_type"] = MessageType(values["message_type"])
        values["state"] = DeliveryState(values["state"])
        return cls(**values)
