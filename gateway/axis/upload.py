"""A sendEdoc body as it arrives: digested in one pass, kept in memory when small and in a
file when not."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from gateway.axis.wire import Refusal
from gateway.vxp.answers import AxisCode

IN_MEMORY_UPLOAD_BYTES = 1024 * 1024  # a sendEdoc body up to this size is read whole, not streamed to a file
CHUNK = 256 * 1024


class UploadDigests:
    """SHA-256 of an upload with and without its last two bytes (the SDK's closing CRLF, which
    hash-file does not cover), from one pass over it and without copying a chunk."""

    def __init__(self) -> None:
        self._without_tail = hashlib.sha256()
        self._tail = b""

    def update(self, chunk: bytes) -> None:
        if len(chunk) >= 2:
            self._without_tail.update(self._tail)
            self._without_tail.update(memoryview(chunk)[:-2])
            self._tail = chunk[-2:]
        else:
            joined = self._tail + chunk
            self._without_tail.update(joined[:-2])
            self._tail = joined[-2:]

    def result(self) -> tuple[bytes, bytes | None]:
        """(digest of it all, digest without the tail when the tail is CRLF)."""
        whole = self._without_tail.copy()
        whole.update(self._tail)
        return whole.digest(), self._without_tail.digest() if self._tail == b"\r\n" else None


@dataclass
class Upload:
    """A received sendEdoc body: in memory when small, else the file it was streamed to."""

    source: Path | bytes
    digest: bytes
    trimmed_digest: bytes | None
    size: int

    def trim(self) -> None:
        if isinstance(self.source, bytes):
            self.source = self.source[:-2]
        else:
            with self.source.open("r+b") as handle:
                handle.truncate(self.size - 2)
        self.size -= 2

    def discard(self) -> None:
        if isinstance(self.source, Path):
            self.source.unlink(missing_ok=True)


async def receive(request: web.Request, limit: int, spool: Path) -> Upload:
    """Read a sendEdoc body of at most ``limit`` bytes (+2 for the SDK's CRLF), digesting it."""
    length = request.content_length
    if length is not None and length <= IN_MEMORY_UPLOAD_BYTES:
        # The usual document: read whole, no file to open and write on the event loop.
        try:
            data = await request.content.readexactly(length)
        except asyncio.IncompleteReadError:
            raise Refusal(AxisCode.BAD_REQUEST, f"the body ended before its {length} bytes") from None
        digests = UploadDigests()
        digests.update(data)
        return Upload(data, *digests.result(), length)
    path = spool / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{id(request):x}.part"
    digests = UploadDigests()
    size = 0
    with path.open("wb") as handle:
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit + 2:
                    raise Refusal(AxisCode.TOO_LARGE, f"more than {limit} bytes")
                digests.update(chunk)
                handle.write(chunk)
        except Refusal:
            handle.close()
            path.unlink(missing_ok=True)
            raise
    return Upload(path, *digests.result(), size)
