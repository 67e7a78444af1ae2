"""The words of the VXP wire that both sides use: message types and delivery states (facts §5).

The axis lists, counts and stores messages by type; the recipient reports each delivery's
state with updateStatus. Both are StrEnums so they go into SQL and JSON as the wire text.
"""

from __future__ import annotations

import enum


class MessageType(enum.StrEnum):
    """The ``messagetype`` parameter: an edXML document or a status message (gói tin trạng thái)."""

    EDOC = "edoc"
    STATUS = "status"

    @classmethod
    def from_wire(cls, text: str) -> MessageType | None:
        """The type ``text`` names, whatever its case and blanks; None for anything else."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            return None


class DeliveryState(enum.StrEnum):
    """Where one delivery stands at the axis; the recipient moves it with updateStatus."""

    PENDING = ("pending", "waiting for the recipient")
    PROCESSING = ("processing", "the recipient is processing it")
    DONE = ("done", "received by the recipient")
    FAIL = ("fail", "the recipient failed to take it; listed again later")

    def __new__(cls, wire: str, meaning: str) -> DeliveryState:
        member = str.__new__(cls, wire)
        member._value_ = wire
        member.meaning = meaning
        return member

    meaning: str

    @classmethod
    def reported(cls, text: str) -> DeliveryState | None:
        """The state a recipient may report (processing, done, fail); None for anything else."""
        try:
            state = cls(text.strip().lower())
        except ValueError:
            return None
        return state if state is not DeliveryState.PENDING else None
