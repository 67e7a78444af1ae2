"""Many small messages in one sendEdoc: our axis's extension (gateway/vxp/extensions.py).

A round of a gateway's outgoing statuses (the 01s of the documents it just delivered, the
answers its agencies gave) used to be one sendEdoc each: a request signed and remembered, a
body read, a check handed to a thread, a file written and its folder synced, a COMMIT. With
signed ``hash-files`` and ``sizes`` (and ``to-each``, a relay's ``to`` of each) instead of
``hash-file``, one call carries up to MOST_MESSAGES messages of one type, their bytes one
after the other with nothing between, each at most SEND_MESSAGE_MAX_BYTES: the request is
authenticated once, the messages checked together (in place when small, gateway/offload.py),
written with one sync of the folder and recorded with one COMMIT.

Each message is judged as if it came alone: the answer's "results" has, in order, a DocId or
an ErrorCode and ErrorDesc for each, and a refused one costs the others nothing. Only what
concerns the call itself (its parameters, the body's length) refuses the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import logs
from gateway.axis.accepting import accept
from gateway.axis.checks import MessageCheck
from gateway.axis.wire import Checked, Refusal
from gateway.offload import SMALL_BATCH_BYTES, in_place_if_small
from gateway.vxp.answers import AxisCode, ok
from gateway.vxp.extensions import (
    MOST_MESSAGES,
    SEND_BODY_MAX_BYTES,
    SEND_MESSAGE_MAX_BYTES,
    SEND_TO_MAX_CHARACTERS,
)
from gateway.vxp.protocol import SignedRequest, parse_json
from gateway.vxp.vocabulary import MessageType

if TYPE_CHECKING:
    from gateway.axis.server import Axis


def is_batch(signed: SignedRequest) -> bool:
    return signed.get("hash-files") is not None


async def send_many(axis: Axis, request: web.Request, signed: SignedRequest, message_type: MessageType) -> web.Response:
    if not axis.config.batching:
        raise Refusal(AxisCode.BAD_REQUEST, "hash-files: this axis takes one message per sendEdoc")
    if signed.get("to") is not None:
        raise Refusal(AxisCode.BAD_REQUEST, "to: several messages in one sendEdoc say theirs in to-each")
    digests, sizes = parse_parts(signed.get("hash-files") or "", signed.get("sizes"))
    to = parse_to_each(signed.get("to-each"), len(sizes))
    total = sum(sizes)
    if request.content_length != total:
        raise Refusal(AxisCode.BAD_REQUEST, f"the body is {request.content_length} bytes, sizes add up to {total}")
    try:
        body = await request.content.readexactly(total)
    except asyncio.IncompleteReadError:
        raise Refusal(AxisCode.BAD_REQUEST, f"the body ended before its {total} bytes") from None
    messages, start = [], 0
    for size in sizes:
        messages.append(body[start : start + size])
        start += size
    judged = await in_place_if_small(
        total, check_each, axis.check, messages, digests, message_type, limit=SMALL_BATCH_BYTES
    )
    outcomes = await accept(axis, signed, judged, message_type, to)
    results = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Refusal):
            axis.log.warning(
                "message_refused",
                system=signed.system_id,
                index=index,
                code=outcome.code.wire,
                reason=outcome.detail or outcome.code.meaning,
            )
            results.append({"ErrorCode": outcome.code.wire, "ErrorDesc": outcome.detail or outcome.code.meaning})
        else:
            results.append({"DocId": outcome})
    return web.json_response(ok(DocId="", results=results))


def parse_parts(hash_files: str, sizes_text: str | None) -> tuple[list[str], list[int]]:
    """``hash-files`` and ``sizes``: as many lowercase SHA-256 hex digests as sizes, 1 to
    MOST_MESSAGES of them, each size 1 to SEND_MESSAGE_MAX_BYTES, together SEND_BODY_MAX_BYTES at most."""
    digests, sizes = _json_list(hash_files, "hash-files"), _json_list(sizes_text or "", "sizes")
    if not all(isinstance(d, str) and len(d) == 64 and all(c in "0123456789abcdef" for c in d) for d in digests):
        raise Refusal(AxisCode.BAD_REQUEST, "hash-files must be SHA-256 digests in lowercase hex")
    if not all(type(s) is int and 0 < s <= SEND_MESSAGE_MAX_BYTES for s in sizes):
        raise Refusal(AxisCode.BAD_REQUEST, f"sizes must be numbers of bytes from 1 to {SEND_MESSAGE_MAX_BYTES}")
    if len(digests) != len(sizes) or not 1 <= len(sizes) <= MOST_MESSAGES:
        raise Refusal(
            AxisCode.BAD_REQUEST,
            f"{len(digests)} hash-files and {len(sizes)} sizes; 1 to {MOST_MESSAGES} messages, one of each a message",
        )
    if sum(sizes) > SEND_BODY_MAX_BYTES:
        raise Refusal(AxisCode.TOO_LARGE, f"{sum(sizes)} bytes of messages, one call carries {SEND_BODY_MAX_BYTES}")
    return digests, sizes


def parse_to_each(text: str | None, count: int) -> list[str | None]:
    """``to-each``: for each message, the ``to`` it would have been sent with alone (a JSON array
    of codes, as sendEdoc's ``to``) or null for all its recipients; absent: null for each."""
    if text is None:
        return [None] * count
    if len(text) > SEND_TO_MAX_CHARACTERS:
        raise Refusal(AxisCode.BAD_REQUEST, f"to-each is {len(text)} characters, {SEND_TO_MAX_CHARACTERS} are taken")
    entries = _json_list(text, "to-each")
    if len(entries) != count or not all(
        entry is None or (isinstance(entry, list) and all(isinstance(code, str) for code in entry)) for entry in entries
    ):
        raise Refusal(AxisCode.BAD_REQUEST, f"to-each must have {count} entries, each a list of codes or null")
    return [None if entry is None else json.dumps(entry) for entry in entries]


def _json_list(text: str, name: str) -> list:
    try:
        value = parse_json(text)
    except ValueError:
        raise Refusal(AxisCode.BAD_REQUEST, f"{name} is not a JSON array: {text[:80]!r}") from None
    if not isinstance(value, list):
        raise Refusal(AxisCode.BAD_REQUEST, f"{name} must be a JSON array")
    return value


def check_each(
    check: MessageCheck, messages: Sequence[bytes], digests: Sequence[str], message_type: MessageType
) -> list[Checked | Refusal]:
    """Each message against its digest, then as sendEdoc checks one."""
    judged: list[Checked | Refusal] = []
    for data, claimed in zip(messages, digests, strict=True):
        digest = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(digest, claimed):
            judged.append(Refusal(AxisCode.HASH_MISMATCH))
            continue
        try:
            judged.append(check(data, message_type, digest))
        except Refusal as refusal:
            judged.append(refusal)
        except Exception as exc:  # a bug: this message alone is refused (20), with its trace logged
            logs.get("axis").error("internal_error", call="sendEdoc", exc_info=exc)
            judged.append(Refusal(AxisCode.INTERNAL, type(exc).__name__))
    return judged
