"""Small file-system helpers: atomic writes, so no reader ever sees half a file."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import AlreadyRunning


def write_atomic(
    path: Path, data: bytes | Iterable[bytes | memoryview], *, mode: int = 0o644, overwrite: bool = True
) -> None:
    """Write ``data`` (bytes, or pieces written one after the other) to ``path`` via a temporary
    file in the same folder, fsync, then rename."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes | bytearray | memoryview):
                handle.write(data)
            else:
                for piece in data:
                    handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)  # fails if the name appeared meanwhile
            os.unlink(temp_name)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def file_sha256(path: Path) -> tuple[bytes, int]:
    """The SHA-256 of a file and its size, read in pieces: never the whole file in memory."""
    with Path(path).open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.digest(), handle.tell()


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a file created, a rename) durable, not only the files' bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def instance_lock(folder: Path, what: str) -> Iterator[Path]:
    """Hold ``folder/.lock`` for as long as this process works on ``folder``.

    Two daemons on one data folder would both take the same drop-folder entries and send
    them twice (a gateway), or delete each other's half-received files as orphans (the
    axis). flock is released by the kernel when the process dies, SIGKILL included, so a
    crash never leaves a stale lock behind; the pid inside is only for the error message.
    """
    path = Path(folder) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another {what} (pid {holder}) is running on this data folder; stop it first", where=str(path)
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def lock_holder(folder: Path) -> int | None:
    """The pid holding ``folder/.lock`` (see instance_lock), or None when nothing holds it.

    Read from /proc/locks, which lists every flock with its inode: asking by taking the
    lock ourselves would, for a moment, make a daemon starting right then refuse to run.
    Where /proc/locks cannot be read, a shared lock is tried and let go at once.
    """
    path = Path(folder) / ".lock"
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    wanted = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return _probe_lock(path)
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue  # a blocked waiter, or another kind of lock
        major, minor, inode = fields[5].split(":")
        if (int(major, 16), int(minor, 16), int(inode)) == wanted:
            return int(fields[4])
    return None


def _probe_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(holder) if holder.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
