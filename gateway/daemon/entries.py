"""A drop-folder entry on the disk, as intake reads and removes it (worker threads): what keys
it, whether it is something intake may read at all, and its removal once taken."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from gateway.daemon import status_files
from gateway.errors import IntakeError
from gateway.fsutil import file_sha256

# A name is at most 255 bytes, and intake keeps names beside an entry's (".preparing-NAME",
# ".taken-NAME.XXXXXXXX", "failed/NAME.error.txt" written through a temporary name): longer
# entry names are refused, under a shortened name.
MAX_ENTRY_NAME_BYTES = 200


# Errors that are the entry's as the document system wrote it, not the disk's: a file this
# account may not read (written under umask 077), a folder where a file belongs, a name too
# long for the folders intake keeps beside it, a link loop. Retried, they fail again five
# times a second for ever; refused, the entry and why are in failed/ for the document system.
ENTRY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP})


def the_entrys(entry: Path, exc: OSError) -> bool:
    """Whether ``exc`` is one of ENTRY_ERRNOS about the entry or a file in it (the same error on
    the gateway's own folders is its configuration, and every entry would meet it)."""
    if exc.errno not in ENTRY_ERRNOS or exc.filename is None:
        return False
    where, top = Path(os.path.abspath(os.fsdecode(exc.filename))), Path(os.path.abspath(entry))
    return where == top or top in where.parents


def written_at(entry: Path) -> float:
    """When the entry was last written; now when that cannot be said."""
    try:
        return entry.stat().st_mtime
    except OSError:
        return time.time()


# What intake reads of an entry before anything else: the digest that keys it, its size, and
# for a status file its request or why it is refused.
Look = tuple[str, int, dict | IntakeError | None]


def look_at_each(entries: list[Path]) -> list[Look | OSError]:
    """:func:`_look_at` for each entry (worker thread); an entry that cannot be read gets its error."""
    looks: list[Look | OSError] = []
    for entry in entries:
        try:
            looks.append(_look_at(entry))
        except OSError as exc:
            looks.append(exc)
    return looks


def _look_at(entry: Path) -> Look:
    """The entry's key digest and size and, for a status file, its request or why it is
    refused: one hand-off, and a status file read once for both."""
    if not status_files.is_status_file(entry.name):
        mode = entry.stat().st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):  # a pipe would block its reader
            return "", 0, IntakeError("an entry must be a job folder or a regular .edxml file", where=entry.name)
        return (*_content_hash(entry), None)
    raw, request = status_files.read(entry)
    return hashlib.sha256(raw).hexdigest(), len(raw), request


def _content_hash(entry: Path) -> tuple[str, int]:
    """The digest that keys an entry (names and contents) and its size in bytes, read in chunks:
    an entry too large to send must not be read whole just to be recognised."""
    if not entry.is_dir():
        digest, size = file_sha256(entry)
        return digest.hex(), size
    combined = hashlib.sha256()
    size = 0
    for path in sorted(p for p in entry.rglob("*") if p.is_file()):
        digest, file_size = file_sha256(path)
        combined.update(str(path.relative_to(entry)).encode())
        combined.update(digest)
        size += file_size
    return combined.hexdigest(), size


def taken_away(entry: Path) -> tuple[str, OSError | None] | OSError:
    """:func:`_take_away`, or the error that kept the entry where it is."""
    try:
        return _take_away(entry)
    except OSError as exc:
        return exc


def _take_away(entry: Path) -> tuple[str, OSError | None]:
    """Out of the drop folder: renamed to a dot-name (ignored from then on), then removed; that
    name, and the error when removing it is not allowed (it stays, never taken again)."""
    hidden = entry.with_name(f".taken-{entry.name}")
    if hidden.exists():  # an earlier entry of that name this account could not remove
        hidden = entry.with_name(f".taken-{entry.name}.{uuid.uuid4().hex[:8]}")
    os.replace(entry, hidden)
    try:
        remove(hidden)
    except OSError as exc:
        return hidden.name, exc
    return hidden.name, None


def fitting(name: str) -> str:
    """``name``, or a shortened one with a digest of it when it is too long to keep beside."""
    if len(os.fsencode(name)) <= MAX_ENTRY_NAME_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    short = name
    while len(os.fsencode(short)) > MAX_ENTRY_NAME_BYTES - len(digest) - 1:
        short = short[:-1]
    return f"{short}-{digest}"


def remove(entry: Path) -> None:
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)
