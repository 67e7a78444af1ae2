"""The JSON envelope of every axis answer and our axis's error-code table.

Every answer, success or failure, carries ``status``, ``ErrorCode`` and ``ErrorDesc`` as
strings, never JSON null (the SDK loses the error otherwise, facts §5.6); sendEdoc always
carries ``DocId``. The SDK reads answers as US-ASCII, so descriptions are ASCII.
The codes follow the provincial tables the facts list (§5.1); the real VXP table is not public.
"""

from __future__ import annotations

import enum
from typing import Any


class AxisCode(enum.Enum):
    """ErrorCode values of our axis, with the HTTP status each answer carries."""

    OK = ("0", 200, "success")
    INVALID_FILE = ("10", 400, "the file is not well-formed XML")
    TOO_LARGE = ("11", 413, "the file is larger than the axis accepts")
    HASH_MISMATCH = ("12", 400, "hash-file does not match the SHA-256 of the file")
    BAD_CREDENTIALS = ("15", 401, "unknown system or wrong signature")
    STALE_TIMESTAMP = ("16", 401, "timestamp outside the accepted window")
    REPLAYED = ("17", 401, "request already seen")
    UNKNOWN_RECIPIENT = ("18", 400, "a recipient is not registered on the axis")
    SENDER_NOT_ALLOWED = ("19", 403, "the sender is not an agency of the calling system")
    INTERNAL = ("20", 500, "internal error of the axis")
    BAD_REQUEST = ("21", 400, "missing or invalid request parameter")
    NOT_EDXML = ("22", 400, "the file is not acceptable edXML")
    RECIPIENT_LOCKED = ("23", 403, "a recipient is locked")
    NOT_FOUND = ("24", 404, "no such document for this system")

    def __init__(self, wire: str, http_status: int, meaning: str) -> None:
        self.wire = wire
        self.http_status = http_status
        self.meaning = meaning

    @property
    def permanent(self) -> bool:
        """Sending the same bytes again cannot succeed: the message fails, it is not retried."""
        return self in _PERMANENT

    @property
    def refuses_caller(self) -> bool:
        """The axis refuses the caller itself (credentials, clock): every call will fail alike."""
        return self in (AxisCode.BAD_CREDENTIALS, AxisCode.STALE_TIMESTAMP)

    @classmethod
    def from_wire(cls, wire: str) -> AxisCode | None:
        """The code an answer's ErrorCode names; None for one this table does not know."""
        return _BY_WIRE.get(str(wire).strip())


_PERMANENT = frozenset(
    {
        AxisCode.INVALID_FILE,
        AxisCode.TOO_LARGE,
        AxisCode.HASH_MISMATCH,
        AxisCode.UNKNOWN_RECIPIENT,
        AxisCode.SENDER_NOT_ALLOWED,
        AxisCode.BAD_REQUEST,
        AxisCode.NOT_EDXML,
        AxisCode.RECIPIENT_LOCKED,
    }
)
_BY_WIRE = {code.wire: code for code in AxisCode}


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def ok(**fields: Any) -> dict[str, Any]:
    return {"status": "OK", "ErrorCode": AxisCode.OK.wire, "ErrorDesc": "Thanh cong", **fields}


def fail(code: AxisCode, detail: str | None = None, **fields: Any) -> dict[str, Any]:
    description = code.meaning if not detail else f"{code.meaning}: {detail}"
    return {"status": "FAIL", "ErrorCode": code.wire, "ErrorDesc": _ascii(description), **fields}
