"""A sendEdoc body as it arrives: digested in one pass, kept in memory when small and in a
file when not."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


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
