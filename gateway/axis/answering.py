"""getEdoc's answer: the JSON envelope with the message's base64 spliced in as bytes, a large
message encoded and sent piece by piece as it is read from its file."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import pybase64
from aiohttp import web

from gateway.offload import SMALL_BYTES
from gateway.vxp.answers import ok

_PAYLOAD_SLOT = "edxml-payload-slot"  # where getEdoc's base64 goes into its JSON answer
STREAM_FROM_BYTES = 4 * 1024 * 1024  # a stored message this large is answered in pieces
STREAM_PIECE = 3 * 1024 * 1024  # read per piece: a multiple of 3, so the pieces' base64 joins up


async def stored_message(path: Path) -> bytes | BinaryIO:
    """A small stored message's bytes; a large one's open file, to be sent in pieces. Opened and
    a small one read on the loop (our own docs/: less than a hand-off, gateway/offload.py)."""
    handle = path.open("rb")
    size = os.fstat(handle.fileno()).st_size
    if size >= STREAM_FROM_BYTES:
        return handle
    with handle:
        if size <= SMALL_BYTES:
            return handle.read()
        return await asyncio.to_thread(handle.read)


async def edoc_answer(
    request: web.Request, stored: bytes | BinaryIO, axis_doc_id: str, *, log: Any
) -> web.StreamResponse:
    """The answer to getEdoc for a stored message (its bytes, or its open file, closed here)."""
    # The envelope through json, the base64 spliced in as bytes (it needs no escaping): no
    # str copy of a message that may be 160 MB.
    head, _, tail = json.dumps(ok(data=_PAYLOAD_SLOT)).encode("ascii").partition(f'"{_PAYLOAD_SLOT}"'.encode())
    if isinstance(stored, bytes):
        body = b"".join((head, b'"', pybase64.b64encode(stored), b'"', tail))
        return web.Response(body=body, content_type="application/json")
    # A large message is encoded piece by piece as it is sent: never whole in memory, as
    # the file or as its base64.
    with stored:
        size = os.fstat(stored.fileno()).st_size
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(head) + 2 + 4 * -(-size // 3) + len(tail)
        await response.prepare(request)
        try:
            await response.write(head + b'"')
            while piece := await asyncio.to_thread(stored.read, STREAM_PIECE):
                await response.write(pybase64.b64encode(piece))
            await response.write(b'"' + tail)
            await response.write_eof()
        except OSError as exc:  # the disk, or the caller gone (a reset connection is an OSError)
            # The headers are gone: no refusal can follow them. The connection is closed, so
            # the caller sees a broken answer at once, and fetches again.
            response.force_close()
            log.warning("delivery_fetch_interrupted", axis_doc_id=axis_doc_id, reason=f"{type(exc).__name__}: {exc}")
    return response
