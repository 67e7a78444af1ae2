"""getEdoc's answer carries the whole message as one base64 string inside a JSON envelope:
read apart from the envelope, in pieces, without text copies of it (sans-IO)."""

from __future__ import annotations

import re

import pybase64

PAYLOAD_SPLIT_BYTES = 64 * 1024  # smaller answers go through the JSON parser whole


class PayloadReader:
    """getEdoc's answer, fed as it arrives: the JSON around "data" kept, the base64 inside decoded.

    Sans-IO: :meth:`feed` the pieces, then :meth:`finish`. ``expected`` (Content-Length, when
    announced) lets the decoded message be allocated once at its final size. Base64 that is
    not valid is noted, not raised at once: the envelope still has to be read, since an
    answer refusing the caller matters more than its data.
    """

    _START = re.compile(rb'"data"\s*:\s*"')
    _HEAD_MAX = 64 * 1024  # "data" further into the answer than this: not our shape, read it whole

    def __init__(self, expected: int | None = None) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self._state = "head"  # head → data → tail, or whole
        self._carry = b""
        self._padded = False
        self._decoded = bytearray(expected * 3 // 4 if expected else 0)
        self._size = 0
        self.problem: str | None = None  # why the data is not base64, once it is known not to be

    def feed(self, chunk: bytes) -> None:
        if self._state in ("whole", "tail"):
            (self._head if self._state == "whole" else self._tail).extend(chunk)
            return
        if self._state == "head":
            self._head.extend(chunk)
            found = self._START.search(self._head)
            if found is None:
                if len(self._head) > self._HEAD_MAX:
                    self._state = "whole"
                return
            chunk = bytes(self._head[found.end() :])
            del self._head[found.end() - 1 :]  # the envelope keeps `"data":`, the string is put back empty
            self._state = "data"
        end = chunk.find(b'"')
        if self.problem is None:
            try:
                self._decode(chunk if end < 0 else chunk[:end])
                if end >= 0 and self._carry:
                    raise ValueError(f"{len(self._carry)} characters left over at the end")
            except ValueError as exc:
                self.problem = str(exc)
        if end >= 0:
            self._state = "tail"
            self._tail.extend(chunk[end + 1 :])

    def _decode(self, text: bytes) -> None:
        text = self._carry + text
        escaped = b""
        if b"\\" in text:  # JSON may escape "/" as "\/"; no other escape belongs in base64
            if (len(text) - len(text.rstrip(b"\\"))) % 2:
                text, escaped = text[:-1], b"\\"  # its escaped character comes with the next piece
            text = text.replace(b"\\/", b"/")
            if b"\\" in text:
                raise ValueError("an escape other than \\/ in the base64")
        whole = len(text) // 4 * 4
        self._carry = text[whole:] + escaped
        if not whole:
            return
        if self._padded:
            raise ValueError("the base64 goes on after its padding")
        piece = pybase64.b64decode(text[:whole], validate=True)
        self._padded = text.find(b"=", 0, whole) >= 0  # decoded piece by piece, padding may only end it
        end = self._size + len(piece)
        if end <= len(self._decoded):
            self._decoded[self._size : end] = piece
        else:
            del self._decoded[self._size :]
            self._decoded.extend(piece)
        self._size = end

    def finish(self) -> tuple[bytes, bytearray | None]:
        """(the JSON envelope with "data" emptied, the decoded bytes); (the answer, None) if not shaped
        so. When :attr:`problem` is set the bytes are not the message: check it before using them."""
        if self._state in ("head", "whole"):
            return bytes(self._head), None
        if self._state == "data":
            raise ValueError("the answer ends inside the data string")
        del self._decoded[self._size :]
        return bytes(self._head) + b'""' + bytes(self._tail), self._decoded


def split_payload(body: bytes) -> tuple[bytes, memoryview | None]:
    """A large answer's "data" string apart from the rest of the JSON envelope.

    getEdoc carries the whole message as one base64 string: a 20 MB document is a 36 MB
    answer. Decoding it as JSON makes two more copies of it as text before the base64 is
    even decoded. Base64 needs no JSON escapes, so the string is taken as it stands in the
    bytes, and only the small envelope around it goes through the JSON parser. Anything
    unusual (an escape inside, no such key) is left to the JSON parser whole.
    """
    if len(body) < PAYLOAD_SPLIT_BYTES:
        return body, None
    key = body.find(b'"data"')
    if key < 0:
        return body, None
    colon = key + len(b'"data"')
    while colon < len(body) and body[colon] in b" \t\r\n":
        colon += 1
    quote = colon + 1
    while quote < len(body) and body[quote] in b" \t\r\n":
        quote += 1
    if body[colon : colon + 1] != b":" or body[quote : quote + 1] != b'"':
        return body, None
    start = quote + 1
    end = body.find(b'"', start)
    if end < 0 or body.find(b"\\", start, end) >= 0:
        return body, None
    return body[:start] + body[end:], memoryview(body)[start:end]
