"""Opening SQLite the way every store here needs it: WAL, durable commits, clear errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import StoreError

BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")


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


def refuse_newer(connection: sqlite3.Connection, known: int) -> int:
    """The database's schema version, refused when a newer release made it (an upgrade rolled
    back): taken as ours, it would be marked older and written without the newer rules, and
    its migration run again later."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > known:
        raise StoreError(
            f"the database was made by a newer edxml-gateway (schema version {version}; this one knows"
            f" {known}): run the newer release, or restore the backup taken before the upgrade",
            where=connection.execute("PRAGMA database_list").fetchone()[2],
        )
    return version


def connect_to_look(path: Path) -> sqlite3.Connection:
    """A connection that only reads (health, track, list, report), for whoever may read the
    database: root, or a member of the service's group, who cannot write it or its folder. While
    a gateway has it open, its -wal and -shm files are there and are read through; with none
    (the gateway stopped: nothing writes) the file is read as it is, without making them."""
    wal = path.with_name(path.name + "-wal")
    options = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(
            f"{path.absolute().as_uri()}?{options}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.row_factory = sqlite3.Row
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"database {path} cannot be read: {exc}", where=str(path)) from None
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
    if connection.in_transaction:  # inside a group commit (see GroupCommit): a savepoint of it
        connection.execute("SAVEPOINT step")
        try:
            yield connection
        except BaseException:
            # some errors (a full disk, an I/O error) make SQLite take back the whole
            # transaction: there is no savepoint left to return to, and GroupCommit sees it
            if connection.in_transaction:
                connection.execute("ROLLBACK TO step")
                connection.execute("RELEASE step")
            raise
        connection.execute("RELEASE step")
        return
    with _synchronous(connection, "FULL" if durable else "NORMAL"):
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:  # not already taken back by SQLite itself
                connection.execute("ROLLBACK")
            raise
        try:
            connection.execute("COMMIT")
        except BaseException:
            # a COMMIT that fails (a full disk, a deferred constraint) leaves the transaction
            # open: taken back, or every later BEGIN of this connection would fail
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise


@contextmanager
def relaxed(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Single statements in autocommit mode committed without fsync (see :func:`transaction`)."""
    with _synchronous(connection, "NORMAL"):
        yield connection


@contextmanager
def _synchronous(connection: sqlite3.Connection, level: str) -> Iterator[None]:
    base = getattr(connection, "synchronous", "FULL")
    if level == base or connection.in_transaction:  # a group commit's COMMIT is durable
        yield
        return
    connection.execute(f"PRAGMA synchronous = {level}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA synchronous = {base}")


class GroupCommit:
    """Several durable steps, one COMMIT: steps submitted while the event loop is busy (with
    the previous COMMIT's fsync, say) are committed together at its next turn, each in a
    savepoint of its own (a step that fails is taken back alone and its caller gets its
    error). :meth:`run` returns once the step is durable, never before: what it let us
    acknowledge is on disk.

    Every write of the connection must happen on the event loop's thread (the gateway's store
    does so), and a step never awaits: nothing else uses the connection during a batch.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._steps: list[tuple[Callable[[], Any], asyncio.Future]] = []
        self.batches = 0  # how many COMMITs, and how many steps they carried: bench figures
        self.steps = 0

    async def run(self, step: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._steps.append((step, future))
        if len(self._steps) == 1:
            loop.call_soon(self._commit)
        return await future

    def _commit(self) -> None:
        steps, self._steps = self._steps, []
        done: list[tuple[asyncio.Future, Any]] = []
        try:
            with transaction(self.connection):
                for step, future in steps:
                    try:
                        with transaction(self.connection):  # its savepoint
                            done.append((future, step()))
                    except Exception as exc:  # the step's caller gets it
                        if not future.done():
                            future.set_exception(exc)
                        if not self.connection.in_transaction:  # SQLite took the whole batch back
                            raise StoreError(f"a group commit was rolled back by SQLite: {exc}") from exc
        except Exception as exc:  # BEGIN or COMMIT failed, or the batch was lost: no step is durable
            for _, future in steps:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.steps += len(steps)
        for future, result in done:
            if not future.done():
                future.set_result(result)
