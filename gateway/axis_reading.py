"""Reading an axis's answer: never more than a limit, the getEdoc payload decoded as it
arrives, and the JSON envelope checked for the ErrorCode that refuses the call or the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from gateway.edxml import DEFAULT_LIMITS
from gateway.errors import AxisError, AxisRefusesGateway, AxisUnavailable
from gateway.vxp.answers import AxisCode
from gateway.vxp.extensions import INLINE_ANSWER_MAX_BYTES
from gateway.vxp.payload import PayloadReader, split_payload
from gateway.vxp.protocol import parse_json

LARGE_ANSWER_BYTES = 16 * 1024 * 1024  # a getEdoc answer this large is a large message (see get_edoc)


def answer_limit(max_message_bytes: int) -> int:
    """The largest answer worth reading for messages up to ``max_message_bytes``: getEdoc's
    base64 of such a message, with room for its JSON envelope."""
    return 4 * -(-max_message_bytes // 3) + 1024 * 1024


# The largest answer read: getEdoc of the largest message a gateway accepts ([limits] max_bytes,
# 160 MiB by default) is its base64 in JSON; more is refused, not read into memory.
DEFAULT_MAX_ANSWER_BYTES = answer_limit(DEFAULT_LIMITS.max_bytes)

# Every other answer is a list or a word, parsed whole: a national directory of 30,000 agencies
# or a backlog of 80,000 listed items is about 16 MiB of JSON, an inline list's messages 2 MiB
# more. An answer of the getEdoc limit's size that lists "{}" over and over would be tens of
# millions of objects in memory; a list is refused past these, before it is parsed.
LIST_ANSWER_MAX_BYTES = 16 * 1024 * 1024 + INLINE_ANSWER_MAX_BYTES
LIST_ANSWER_MAX_OBJECTS = 200_000


def _too_many_objects(name: str, raw: bytes, where: str) -> None:
    """A list answer with more JSON objects than any axis lists (counted by their opening
    brace, strings' included: an upper bound, in C, before the parser makes them) is refused."""
    if raw.count(b"{") > LIST_ANSWER_MAX_OBJECTS:
        raise AxisError(f"{name}: the answer holds more than {LIST_ANSWER_MAX_OBJECTS} objects", where=where)


async def read_limited(
    name: str,
    response: aiohttp.ClientResponse,
    take: Callable[[bytes], object],
    limit: int,
    where: str,
    before_large: Callable[[], Awaitable[None]] | None = None,
    bound: str = "the largest message [limits] max_bytes lets in",
) -> None:
    """Hand the answer's body to ``take`` a piece at a time, never more than ``limit`` bytes
    (``bound`` says what that limit is, for the error)."""
    too_large = f"{name}: the answer is larger than {limit} bytes ({bound})"
    if response.content_length is not None and response.content_length > limit:
        raise AxisError(too_large, where=where)
    if before_large is not None and (response.content_length or 0) >= LARGE_ANSWER_BYTES:
        await before_large()  # the caller's turn for a large message, before any of it is read
    size = 0
    async for chunk in response.content.iter_chunked(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise AxisError(too_large, where=where)
        take(chunk)


async def read_list_answer(name: str, response: aiohttp.ClientResponse, limit: int, where: str) -> bytes:
    """An answer that is not getEdoc's: at most ``limit`` bytes and LIST_ANSWER_MAX_OBJECTS."""
    parts: list[bytes] = []
    await read_limited(name, response, parts.append, limit, where, bound="the most a list or directory may be")
    raw = b"".join(parts)
    _too_many_objects(name, raw, where)
    return raw
    return b"".join(parts)


async def read_payload_answer(
    name: str,
    response: aiohttp.ClientResponse,
    limit: int,
    where: str,
    before_large: Callable[[], Awaitable[None]] | None,
) -> tuple[bytes, bytearray | None, str | None]:
    """The answer with its "data" decoded as it arrives: (the JSON around it, the bytes, why
    they are not base64 or None).

    A 20 MB scan is a 36 MB answer; read whole and then decoded it is 36 + 27 MB at once,
    decoded in pieces it is the 27 MB message and a megabyte at a time. (answer, None) for
    an answer that is not shaped so (small, an error, "data" not found near the start).
    """
    reader = PayloadReader(response.content_length)
    try:
        await read_limited(name, response, reader.feed, limit, where, before_large)
        envelope, decoded = reader.finish()
    except ValueError as exc:
        raise AxisError(f"{name}: {exc}", where=where) from None
    return envelope, decoded, reader.problem


def checked_answer(
    name: str, raw: bytes, streamed: bytearray | None, problem: str | None, http_status: int, *, where: str
) -> dict:
    """The answer's JSON object, its payload (a streamed one, or one cut out of ``raw``) put back
    as "data"; an ErrorCode that refuses the caller (every other call would be refused too: an
    outage) raises AxisRefusesGateway, any other refusal AxisError."""
    envelope, payload = split_payload(raw) if streamed is None else (raw, streamed)
    try:
        answer = parse_json(envelope.decode("utf-8", errors="replace"))
        if payload is not None and not (isinstance(answer, dict) and answer.get("data") == ""):
            # The "data" cut out was not the top-level one. Read the answer whole; a streamed
            # one was already consumed, but its top-level "data" is in the envelope as it came.
            if streamed is None:
                answer = parse_json(raw.decode("utf-8", errors="replace"))
            payload = None
    except ValueError:
        raise AxisUnavailable(f"{name}: HTTP {http_status} with a body that is not JSON", where=where) from None
    if not isinstance(answer, dict):
        raise AxisUnavailable(f"{name}: the answer is not a JSON object", where=where)
    if payload is not None:
        answer["data"] = payload
    error_code = str(answer.get("ErrorCode", ""))[:20]  # ours are two digits; the rest is noise
    known = AxisCode.from_wire(error_code)
    if known is not None and known.refuses_caller:
        raise AxisRefusesGateway(
            f"{name}: ErrorCode {said(error_code)}: {said(answer.get('ErrorDesc', ''))}",
            axis_code=error_code,
            where=where,
        )
    if str(answer.get("status", "")).upper() == "FAIL" or error_code not in ("0", ""):
        raise AxisError(
            f"{name}: ErrorCode {said(error_code)}: {said(answer.get('ErrorDesc', ''))}",
            axis_code=error_code,
            where=where,
        )
    if problem is not None and payload is not None:
        raise AxisError(f"{name}: data is not base64: {problem}", where=where)
    return answer


SAID_MAX_CHARS = 300


def said(value: object) -> str:
    """What an axis said (an ErrorDesc, an ErrorCode), as an error message may carry it: one
    line, at most SAID_MAX_CHARS; an axis's 50 MB of text must not reach every log line and
    record that names the refusal."""
    text = " ".join(str(value).split())
    return text if len(text) <= SAID_MAX_CHARS else text[:SAID_MAX_CHARS] + f"… ({len(text)} characters)"
