"""Small file-system helpers: atomic writes, so no reader ever sees half a file."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import AlreadyRunning

LOCK_PATIENCE = 1.0  # seconds instance_lock waits for a lock held only for an instant


def write_atomic(
    path: Path,
    data: bytes | Iterable[bytes | memoryview],
    *,
    mode: int = 0o644,
    overwrite: bool = True,
    sync_folder: bool = True,
) -> None:
    """Write ``data`` (bytes, or pieces written one after the other) to ``path`` via a temporary
    file in the same folder, fsync, then rename. ``sync_folder=False`` leaves the folder's sync
    (that makes the name durable) to a caller writing several files in it."""
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
    if sync_folder:
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
        # `health` looks by taking the lock shared for an instant: wait that out, not another daemon
        deadline = time.monotonic() + LOCK_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                    raise AlreadyRunning(
                        f"another {what} (pid {holder}) is running on this data folder; stop it first", where=str(path)
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def lock_holder(folder: Path) -> int | None:
    """The pid holding ``folder/.lock`` (see instance_lock), or None when nothing holds it.

    Asked by taking the lock shared and letting it go at once (instance_lock waits that
    instant out); the pid is what the holder wrote in the file, -1 if it wrote none.
    """
    path = Path(folder) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
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


def take_group(made: Path | int, folder: Path) -> None:
    """Give ``made`` (a path, or an open file) the group of ``folder``, the one it is in: the
    shared folders' group, not the service's own, which reads the keys and which the document
    system must not have. A group the service is not in is left as it was made."""
    wanted = folder.stat().st_gid
    try:
        if isinstance(made, int):
            if os.fstat(made).st_gid != wanted:
                os.fchown(made, -1, wanted)
        elif made.stat().st_gid != wanted:
            os.chown(made, -1, wanted)
    except PermissionError:
        pass
