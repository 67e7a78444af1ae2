"""Opening SQLite the way every store here needs it: WAL, durable commits, clear errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import StoreError

BUSY_TIMEOUT_MS = 10_000


class _Connection(sqlite3.Connection):
    """A connection that knows its own synchronous level, so that a transaction asking for
    another one switches (two PRAGMAs) only then: a busy axis commits hundreds of times a second."""

    synchronous = "FULL"


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode; use :func:`transaction` for atomic changes.

    busy_timeout is set before switching to WAL: two processes switching at once otherwise
    fail with "database is locked". synchronous=FULL: a commit survives power loss, which is
    what lets the axis and the gateway acknowledge a document once it is committed.
    ``synchronous="NORMAL"`` makes a connection for bookkeeping only (see ``durable`` below):
    its transactions are not durable unless they ask to be.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(synchronous)
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=_Connection)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{path} cannot use WAL journaling (got {mode})", where=str(path))
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        connection.synchronous = synchronous
        connection.execute("PRAGMA foreign_keys = ON")
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA quick_check(1)").fetchone()
        # Take the write lock once now: a database held by another program (an admin's open
        # transaction, a backup tool) or a read-only file is then a clear error at start,
        # not a worker failing on every write later.
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise StoreError(
                f"database {path} is locked by another program (waited {BUSY_TIMEOUT_MS // 1000} s);"
                " close the program holding it and start again",
                where=str(path),
            ) from None
        raise StoreError(f"database {path} cannot be opened: {exc}", where=str(path)) from None
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error.

    ``durable=False`` is for bookkeeping whose loss in a power failure only repeats harmless
    work (a sent mark: the axis answers a resend with the same DocId; an acknowledgement: the
    axis takes it again; a remembered request signature). Such commits skip the fsync: they
    still survive the process being killed, and the next durable commit syncs them too.
    Everything that lets another party forget a document (a queued message, a delivery, a
    stored upload) stays durable.
    """
    with _synchronous(connection, "FULL" if durable else "NORMAL"):
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


@contextmanager
def relaxed(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Single statements in autocommit mode committed without fsync (see :func:`transaction`)."""
    with _synchronous(connection, "NORMAL"):
        yield connection


@contextmanager
def _synchronous(connection: sqlite3.Connection, level: str) -> Iterator[None]:
    base = getattr(connection, "synchronous", "FULL")
    if level == base:
        yield
        return
    connection.execute(f"PRAGMA synchronous = {level}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA synchronous = {base}")
