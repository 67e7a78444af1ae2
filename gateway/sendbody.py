"""A sendEdoc body from a stored signed file: read whole when small, sent from the disk in
pieces when not (a 100 MB scan is a 133 MB message, never whole in memory)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.offload import SMALL_BYTES
from gateway.vxp import extensions

# A file this large is sent from the disk in pieces instead of read whole first.
SEND_FROM_FILE_BYTES = 4 * 1024 * 1024


def whole_or_path(path: Path) -> bytes | Path:
    """What send_edoc is given for a stored file (worker thread): a small file's bytes, a large
    file's path, sent in pieces and never read whole (a 100 MB scan is a 133 MB message)."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size >= SEND_FROM_FILE_BYTES:
            return path
        return handle.read()


async def stored_body(path: Path) -> bytes | Path:
    """:func:`whole_or_path` on the loop for a small file (our own local disk, read in
    microseconds: less than a hand-off, gateway/offload.py), in a worker thread otherwise."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size <= SMALL_BYTES:
            return handle.read()
    return await asyncio.to_thread(whole_or_path, path)


FILE_PIECE = 1024 * 1024


@dataclass(frozen=True)
class FileBody:
    """A sendEdoc body read from the signed file as it is sent: the file, then CRLF (the SDK's framing)."""

    path: Path
    size: int

    async def pieces(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as handle:
            sent = 0
            while piece := await asyncio.to_thread(handle.read, FILE_PIECE):
                sent += len(piece)
                yield piece
        if sent != self.size:  # changed under us: the hash sent would not match, and the length would lie
            raise OSError(f"{self.path} changed while it was being sent")
        yield b"\r\n"


def read_if_small(paths: Sequence[Path]) -> list[bytes | OSError | None]:
    """Each file's bytes when it fits a sendEdoc of several messages (our axis's extension),
    None when it does not, or why it cannot be read. Read on the loop: our own small local files."""
    read: list[bytes | OSError | None] = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                data = handle.read(extensions.SEND_MESSAGE_MAX_BYTES + 1)
        except OSError as exc:
            read.append(exc)
            continue
        read.append(data if extensions.fits_a_batch(len(data)) else None)
    return read
