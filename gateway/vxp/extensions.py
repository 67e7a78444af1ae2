"""Our axis's extensions of the VXP calls, as they travel (sans-IO).

Each is announced in a header of every answer of our axis and used by a client only while the
last answer announced it: the national axis announces none and is called as the public SDK
calls it; an axis restarted without one is called plainly from its next answer on.

- Long-poll: getReceivedEdocList with a signed ``wait`` (seconds) answers when something never
  fetched is listed for the caller, or after the wait (gateway/axis/longpoll.py).
- Inline messages: getReceivedEdocList with a signed ``inline`` (bytes) carries each listed
  message up to that size in its item's "data", as getEdoc would, and counts it fetched.
- Many docIds: updateStatus with a signed ``docIds`` (a JSON array) instead of ``docId``
  settles many deliveries in one call (gateway/axis/batching.py).
- Directory digest: getAgenciesList with a signed ``known`` (a digest the same axis gave, or
  "none") is answered with a "digest" of the list, and, while ``known`` is that digest, with
  ``"unchanged": true`` instead of the list (a province's directory is 300 KB, read by every
  gateway every housekeeping interval).
- Many messages: sendEdoc with signed ``hash-files`` and ``sizes`` (JSON arrays, one entry a
  message; and ``to-each``, a relay's ``to`` for each) instead of ``hash-file`` carries several
  small messages of one type, their bytes one after the other, and is answered with a
  "results" array, one DocId or ErrorCode a message (gateway/axis/multisend.py): a round of
  01s and answers is one call, not one call each.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, TypeVar

import pybase64

LONG_POLL_HEADER = "X-Long-Poll-Max-Seconds"  # the longest wait
INLINE_HEADER = "X-Inline-Max-Bytes"  # the largest message an item may carry
STATUS_BATCH_HEADER = "X-Update-Status-Max-Ids"  # the most docIds one call may name
DIRECTORY_DIGEST_HEADER = "X-Directory-Digest"  # "1": getAgenciesList takes ``known``
SEND_BATCH_HEADER = "X-Send-Max-Messages"  # the most messages one sendEdoc may carry
# A list answer carries at most 1 MiB of messages (their base64 and 100 items fit in this): a
# client whose answer limit is smaller asks for plain lists.
INLINE_ANSWER_MAX_BYTES = 2 * 1024 * 1024
# docIds one updateStatus names, at most, whatever is announced: the JSON array travels in its
# own header and again in the signed one, each under aiohttp's 8,190 bytes (100 UUIDs: 4 KB).
MOST_DOC_IDS = 100
# Messages one sendEdoc carries, at most, whatever is announced: their digests travel in a header
# and again in the signed one (40 SHA-256 in hex: 2.8 KB of aiohttp's 8,190 bytes a header).
MOST_MESSAGES = 40
SEND_MESSAGE_MAX_BYTES = 64 * 1024  # a message larger than this is sent alone
SEND_BODY_MAX_BYTES = 1024 * 1024  # the messages of one call together, at most
SEND_TO_MAX_CHARACTERS = 2048  # ``to-each`` of one call, at most (a header, as above)

DIRECTORY_KNOWN = "known"  # getAgenciesList's signed parameter: the digest the caller holds
NO_DIGEST = "none"  # ``known`` of a caller holding none yet
DIGEST_CHARACTERS = 32  # of the hex SHA-256 of the encoded list

N = TypeVar("N", int, float)


class Announced(NamedTuple):
    """What one answer announced; None for an extension it did not."""

    long_poll_max: float | None
    inline_max: int | None
    status_batch_max: int | None
    directory_digest: bool = False
    send_batch_max: int | None = None


def announced(headers: Mapping[str, str]) -> Announced:
    batch = _number(headers.get(STATUS_BATCH_HEADER), int, 10_000)
    sends = _number(headers.get(SEND_BATCH_HEADER), int, 10_000)
    return Announced(
        long_poll_max=_number(headers.get(LONG_POLL_HEADER), float, 3600),
        inline_max=_number(headers.get(INLINE_HEADER), int, 16 * 1024 * 1024),
        status_batch_max=min(batch, MOST_DOC_IDS) if batch else None,
        directory_digest=headers.get(DIRECTORY_DIGEST_HEADER) == "1",
        # one message a call is no batch: an announcement of 1 is none
        send_batch_max=min(sends, MOST_MESSAGES) if sends and sends > 1 else None,
    )


def send_batch_params(messages: Sequence[bytes], to: Sequence[Sequence[str]] | None = None) -> dict[str, str]:
    """The signed parameters of a sendEdoc carrying ``messages`` (their bytes follow one another);
    ``to``, one list a message, restricts each to those of its recipients (sendEdoc's ``to``,
    what a relay sends on for its outside recipients; an empty list: all of them)."""
    params = {
        "hash-files": json.dumps([hashlib.sha256(m).hexdigest() for m in messages]),
        "sizes": json.dumps([len(m) for m in messages]),
    }
    if to is not None and any(to):
        params["to-each"] = json.dumps([list(codes) or None for codes in to])
    return params


class Sendable(NamedTuple):
    """What the plan of a round needs to know of one message."""

    size: int | None  # its bytes; None when it is not read (too large to go with others)
    kind: str = ""  # its message type: one type a call
    to: Sequence[str] = ()  # its `to`, when it has one (a relay's outside recipients)


def plan_sends(messages: Sequence[Sendable], most: int) -> list[range]:
    """The calls of a round, in the queue's order: each a range of indexes, one message alone or
    consecutive ones together (at most ``most``, SEND_BODY_MAX_BYTES, SEND_TO_MAX_CHARACTERS of
    ``to-each``, and one type). A message that does not fit a batch is sent alone in its place,
    so no message overtakes one queued before it."""
    calls: list[range] = []
    added = [_to_characters(message) for message in messages]
    alone = [
        message.size is None or not fits_a_batch(message.size) or share > SEND_TO_MAX_CHARACTERS
        for message, share in zip(messages, added, strict=True)
    ]
    start = total = characters = 0
    for index, message in enumerate(messages):
        if index > start and (
            alone[index]
            or alone[start]
            or index - start >= most
            or message.kind != messages[start].kind
            or total + (message.size or 0) > SEND_BODY_MAX_BYTES
            or characters + added[index] > SEND_TO_MAX_CHARACTERS
        ):
            calls.append(range(start, index))
            start, total, characters = index, 0, 0
        total += message.size or 0
        characters += added[index]
    if messages:
        calls.append(range(start, len(messages)))
    return calls


def _to_characters(message: Sendable) -> int:
    """What the message adds to ``to-each``: its entry, a comma, and room for the escaping the
    signed header gives each quote."""
    return 2 * len(json.dumps(list(message.to) or None)) + 1


def fits_a_batch(size: int) -> bool:
    return 0 < size <= SEND_MESSAGE_MAX_BYTES


def carried_message(data: object) -> bytes | None:
    """A list item's inline message; None (fetched with getEdoc instead) when it is not base64."""
    if not isinstance(data, str):
        return None
    try:
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _number(text: str | None, kind: Callable[[str], N], most: float) -> N | None:
    """An announcement header as a number in (0, most], or None."""
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if 0 < value <= most else None


def directory_digest(data: bytes) -> str:
    """The digest a getAgenciesList answer names its list by."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARACTERS]


def answered_digest(answer: Mapping[str, object]) -> str | None:
    """The digest an answer carries, if it is one of ours; None otherwise."""
    digest = answer.get("digest")
    if isinstance(digest, str) and len(digest) == DIGEST_CHARACTERS and all(c in "0123456789abcdef" for c in digest):
        return digest
    return None
