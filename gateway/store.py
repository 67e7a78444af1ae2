"""The gateway's durable record: what it sent, received, answered and was told.

One SQLite file (WAL, synchronous=FULL) under data_dir, the only module that knows table
names. Every state change is one transaction. Signed outgoing messages live as files
under ``data_dir/outgoing`` (written and fsynced before the row that names them commits).

Outgoing (documents and status messages we send): queued → sent(axis DocId) or failed.
Incoming (what the axis lists for us): listed → delivered | duplicate | rejected |
recorded (a status message), then acknowledged at the axis.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from gateway.sqlite import connect, relaxed, transaction

SCHEMA_VERSION = 4
DOCUMENTS_QUEUED = "documents_queued"  # meta key of the running number (documents_queued)


@dataclass(frozen=True)
class Outgoing:
    id: str
    kind: str  # "edoc" or "status"
    document_id: str
    source_key: str
    file: str
    state: str
    axis_doc_id: str | None
    attempts: int
    next_attempt_at: float
    deadline_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None
    subject: str
    status_code: str | None
    paper: int
    digitized: int
    to_codes: tuple[str, ...]
    answers: str | None
    document_time: str | None = None


@dataclass(frozen=True)
class Incoming:
    axis_doc_id: str
    message_type: str
    state: str
    acked: int
    from_code: str
    document_id: str | None
    subject: str | None
    status_code: str | None
    reason: str | None
    attempts: int
    next_attempt_at: float
    listed_at: float
    finished_at: float | None
    inbox_id: str | None
    paper: int
    digitized: int
    document_time: str | None = None


@dataclass(frozen=True)
class Receipt:
    outgoing_id: str
    from_code: str
    status_code: str
    description: str | None
    status_time: str | None
    received_at: float
    axis_doc_id: str


class GatewayStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.outgoing_dir = data_dir / "outgoing"
        for folder in (data_dir, self.outgoing_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "gateway.sqlite3"
        self.db = connect(self.path)
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        db = sqlite_utils.Database(self.db)
        with transaction(self.db):
            self._create(db)
            # v2: the document's own time (its sender's first TraceHeader, Vietnam time), for reports
            for table in ("outgoing", "incoming"):
                if "document_time" not in db[table].columns_dict:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN document_time TEXT")
            self.db.execute("CREATE INDEX IF NOT EXISTS outgoing_time ON outgoing(kind, document_time)")
            self.db.execute("CREATE INDEX IF NOT EXISTS incoming_time ON incoming(message_type, document_time)")
            # v3: what retry looks for every few seconds, indexed apart from the history (a year of
            # it made those two queries cost 150 ms a run, 3 % of a core at idle)
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS incoming_unacknowledged ON incoming(next_attempt_at)"
                " WHERE acked = 0 AND state != 'listed'"
            )
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS outgoing_queued_deadline ON outgoing(deadline_at) WHERE state = 'queued'"
            )
            # v4: who sent a delivered DocumentId, asked when a revoke, update or replace names one
            self.db.execute(
                "CREATE INDEX IF NOT EXISTS incoming_document ON incoming(document_id) WHERE state = 'delivered'"
            )
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create(self, db: sqlite_utils.Database) -> None:
        """Tables and indexes of version 1 (all created only if missing)."""
        db["outgoing"].create(
            {
                "id": str,
                "kind": str,
                "document_id": str,
                "source_key": str,
                "file": str,
                "state": str,
                "axis_doc_id": str,
                "attempts": int,
                "next_attempt_at": float,
                "deadline_at": float,
                "last_error": str,
                "created_at": float,
                "sent_at": float,
                "subject": str,
                "status_code": str,
                "paper": int,
                "digitized": int,
                "to_codes": str,
                "answers": str,
            },
            pk="id",
            not_null={
                "kind",
                "document_id",
                "source_key",
                "file",
                "state",
                "attempts",
                "next_attempt_at",
                "deadline_at",
                "created_at",
                "subject",
                "paper",
                "digitized",
                "to_codes",
            },
            if_not_exists=True,
        )
        db["outgoing"].create_index(["source_key"], unique=True, if_not_exists=True)
        db["outgoing"].create_index(["kind", "state", "next_attempt_at"], if_not_exists=True)
        db["outgoing"].create_index(["document_id"], if_not_exists=True)
        db["incoming"].create(
            {
                "axis_doc_id": str,
                "message_type": str,
                "state": str,
                "acked": int,
                "from_code": str,
                "document_id": str,
                "subject": str,
                "status_code": str,
                "reason": str,
                "attempts": int,
                "next_attempt_at": float,
                "listed_at": float,
                "finished_at": float,
                "inbox_id": str,
                "paper": int,
                "digitized": int,
            },
            pk="axis_doc_id",
            not_null={
                "message_type",
                "state",
                "acked",
                "from_code",
                "attempts",
                "next_attempt_at",
                "listed_at",
                "paper",
                "digitized",
            },
            if_not_exists=True,
        )
        db["incoming"].create_index(["state", "next_attempt_at"], if_not_exists=True)
        self.db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS incoming_once ON incoming(from_code, document_id)"
            " WHERE state = 'delivered'"
        )
        db["receipts"].create(
            {
                "axis_doc_id": str,
                "outgoing_id": str,
                "from_code": str,
                "status_code": str,
                "description": str,
                "status_time": str,
                "received_at": float,
            },
            pk="axis_doc_id",
            foreign_keys=[("outgoing_id", "outgoing", "id")],
            not_null={"outgoing_id", "from_code", "status_code", "received_at"},
            if_not_exists=True,
        )
        db["receipts"].create_index(["outgoing_id"], if_not_exists=True)
        db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)

    # --- outgoing -----------------------------------------------------------------------------

    def new_outgoing_file(self) -> tuple[str, Path]:
        outgoing_id = str(uuid.uuid4())
        return outgoing_id, self.outgoing_dir / f"{outgoing_id}.edxml"

    def outgoing_by_source(self, source_key: str) -> Outgoing | None:
        row = self.db.execute("SELECT * FROM outgoing WHERE source_key = ?", (source_key,)).fetchone()
        return None if row is None else _outgoing(row)

    def add_outgoing(
        self,
        outgoing_id: str,
        *,
        kind: str,
        document_id: str,
        source_key: str,
        subject: str,
        to_codes: Iterable[str],
        deadline_seconds: float,
        status_code: str | None = None,
        paper: bool = False,
        digitized: bool = False,
        answers: str | None = None,
        document_time: str | None = None,
        connection: sqlite3.Connection | None = None,
    ) -> None:
        """Record a signed message already written to its file. Raises IntegrityError on a known source_key."""
        now = time.time()
        (connection or self.db).execute(
            "INSERT INTO outgoing (id, kind, document_id, source_key, file, state, attempts, next_attempt_at,"
            " deadline_at, created_at, subject, status_code, paper, digitized, to_codes, answers, document_time)"
            " VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                outgoing_id,
                kind,
                document_id,
                source_key,
                f"{outgoing_id}.edxml",
                now,
                now + deadline_seconds,
                now,
                subject,
                status_code,
                int(paper),
                int(digitized),
                json.dumps(list(to_codes)),
                answers,
                document_time,
            ),
        )
        if kind == "edoc":  # the running number, in the same transaction as the row it counts
            (connection or self.db).execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (DOCUMENTS_QUEUED,)
            )

    def due_outgoing(self, kind: str, limit: int, *, longest_wait: float) -> list[Outgoing]:
        """Queued messages whose time has come.

        ``longest_wait`` is the longest postponement ever given: a row scheduled further ahead
        than that was scheduled by a clock that has since been set back (an NTP correction
        after running fast), and is due now rather than hours later.
        """
        now = time.time()
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = ? AND state = 'queued'"
            " AND (next_attempt_at <= ? OR next_attempt_at > ?) ORDER BY next_attempt_at LIMIT ?",
            (kind, now, now + longest_wait, limit),
        )
        return [_outgoing(row) for row in rows]

    def mark_sent(self, outgoing_id: str, axis_doc_id: str) -> None:
        with transaction(self.db, durable=False) as db:
            db.execute(
                "UPDATE outgoing SET state = 'sent', axis_doc_id = ?, sent_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (axis_doc_id, time.time(), outgoing_id),
            )

    def postpone_outgoing(self, outgoing_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE outgoing SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (time.time() + delay, error, outgoing_id),
            )

    def fail_outgoing(self, outgoing_id: str, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE outgoing SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, outgoing_id),
            )

    def overdue_outgoing(self) -> list[Outgoing]:
        rows = self.db.execute("SELECT * FROM outgoing WHERE state = 'queued' AND deadline_at < ?", (time.time(),))
        return [_outgoing(row) for row in rows]

    def requeue(self, document_id: str, deadline_seconds: float) -> list[Outgoing]:
        """Failed messages with this DocumentId (or local id) go back to the queue; returns them."""
        now = time.time()
        with transaction(self.db) as db:
            rows = db.execute(
                "SELECT * FROM outgoing WHERE state = 'failed' AND (document_id = ? OR id = ?)",
                (document_id, document_id),
            ).fetchall()
            db.execute(
                "UPDATE outgoing SET state = 'queued', next_attempt_at = ?, deadline_at = ?, last_error = NULL"
                " WHERE state = 'failed' AND (document_id = ? OR id = ?)",
                (now, now + deadline_seconds, document_id, document_id),
            )
        return [_outgoing(row) for row in rows]

    def documents_queued(self) -> int:
        """How many documents this gateway has ever queued (the default running number).

        Kept in meta and counted up with each document queued: counting the rows took 12 ms
        per document at 200,000 of them, and a gateway keeps every quarter's documents.
        The rows are counted once, when a database has no counter yet.
        """
        value = self.meta(DOCUMENTS_QUEUED)
        if value is not None:
            return int(value)
        with transaction(self.db) as db:
            (count,) = db.execute("SELECT count(*) FROM outgoing WHERE kind = 'edoc'").fetchone()
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (DOCUMENTS_QUEUED, str(count)))
        return int(count)

    def sent_document(self, document_id: str) -> Outgoing | None:
        row = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = 'edoc' AND document_id = ? ORDER BY created_at LIMIT 1", (document_id,)
        ).fetchone()
        return None if row is None else _outgoing(row)

    def outgoing_for(self, document_id: str) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE document_id = ? OR id = ? ORDER BY created_at", (document_id, document_id)
        )
        return [_outgoing(row) for row in rows]

    def outgoing_file(self, item: Outgoing) -> Path:
        return self.outgoing_dir / item.file

    # --- incoming -----------------------------------------------------------------------------

    def note_listed(self, axis_doc_id: str, message_type: str, from_code: str) -> bool:
        """Remember a listed item; True when it is new."""
        with relaxed(self.db):  # forgotten in a power failure, it is simply listed again
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO incoming (axis_doc_id, message_type, state, acked, from_code, attempts,"
                " next_attempt_at, listed_at, paper, digitized) VALUES (?, ?, 'listed', 0, ?, 0, ?, ?, 0, 0)",
                (axis_doc_id, message_type, from_code, time.time(), time.time()),
            )
        return cursor.rowcount == 1

    def incoming(self, axis_doc_id: str) -> Incoming | None:
        row = self.db.execute("SELECT * FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()
        return None if row is None else _incoming(row)

    def due_incoming(self, limit: int, *, longest_wait: float) -> list[Incoming]:
        """Listed messages due for fetching; ``longest_wait`` as in :meth:`due_outgoing`."""
        now = time.time()
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE state = 'listed' AND (next_attempt_at <= ? OR next_attempt_at > ?)"
            " ORDER BY listed_at LIMIT ?",
            (now, now + longest_wait, limit),
        )
        return [_incoming(row) for row in rows]

    def unacknowledged(self, limit: int) -> list[Incoming]:
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE state != 'listed' AND acked = 0 AND next_attempt_at <= ? LIMIT ?",
            (time.time(), limit),
        )
        return [_incoming(row) for row in rows]

    def senders_of(self, document_id: str) -> set[str]:
        """The agencies that delivered a document under this DocumentId to us."""
        rows = self.db.execute(
            "SELECT DISTINCT from_code FROM incoming WHERE document_id = ? AND state = 'delivered'", (document_id,)
        )
        return {row[0] for row in rows}

    def delivered_copy(self, from_code: str, document_id: str) -> Incoming | None:
        row = self.db.execute(
            "SELECT * FROM incoming WHERE from_code = ? AND document_id = ? AND state = 'delivered'",
            (from_code, document_id),
        ).fetchone()
        return None if row is None else _incoming(row)

    def finish_incoming(
        self,
        axis_doc_id: str,
        state: str,
        *,
        from_code: str,
        document_id: str | None = None,
        subject: str | None = None,
        status_code: str | None = None,
        reason: str | None = None,
        inbox_id: str | None = None,
        paper: bool = False,
        digitized: bool = False,
        document_time: str | None = None,
        connection: sqlite3.Connection | None = None,
    ) -> None:
        (connection or self.db).execute(
            "UPDATE incoming SET state = ?, from_code = ?, document_id = ?, subject = ?, status_code = ?, reason = ?,"
            " inbox_id = ?, paper = ?, digitized = ?, finished_at = ?, next_attempt_at = ?, document_time = ?"
            " WHERE axis_doc_id = ?",
            (
                state,
                from_code,
                document_id,
                subject,
                status_code,
                reason,
                inbox_id,
                int(paper),
                int(digitized),
                time.time(),
                time.time(),
                document_time,
                axis_doc_id,
            ),
        )

    def postpone_incoming(self, axis_doc_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE incoming SET attempts = attempts + 1, next_attempt_at = ?, reason = ? WHERE axis_doc_id = ?",
                (time.time() + delay, error, axis_doc_id),
            )

    def forget_acknowledgement(self, axis_doc_id: str) -> None:
        """The axis lists it again: our acknowledgement was lost and must be repeated."""
        self.db.execute("UPDATE incoming SET acked = 0 WHERE axis_doc_id = ?", (axis_doc_id,))

    def mark_acked(self, axis_doc_id: str) -> None:
        with relaxed(self.db):  # forgotten in a power failure, the axis is asked again
            self.db.execute("UPDATE incoming SET acked = 1 WHERE axis_doc_id = ?", (axis_doc_id,))

    def postpone_ack(self, axis_doc_id: str, delay: float) -> None:
        self.db.execute(
            "UPDATE incoming SET next_attempt_at = ? WHERE axis_doc_id = ?", (time.time() + delay, axis_doc_id)
        )

    def delivered(self, inbox_id: str) -> Incoming | None:
        row = self.db.execute(
            "SELECT * FROM incoming WHERE (inbox_id = ? OR axis_doc_id = ? OR document_id = ?)"
            " AND state = 'delivered' AND message_type = 'edoc'",
            (inbox_id, inbox_id, inbox_id),
        ).fetchone()
        return None if row is None else _incoming(row)

    # --- receipts -----------------------------------------------------------------------------

    def add_receipt(self, receipt: Receipt, connection: sqlite3.Connection | None = None) -> None:
        (connection or self.db).execute(
            "INSERT OR IGNORE INTO receipts (axis_doc_id, outgoing_id, from_code, status_code, description,"
            " status_time, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                receipt.axis_doc_id,
                receipt.outgoing_id,
                receipt.from_code,
                receipt.status_code,
                receipt.description,
                receipt.status_time,
                receipt.received_at,
            ),
        )

    def receipts_for(self, outgoing_id: str) -> list[Receipt]:
        rows = self.db.execute(
            "SELECT * FROM receipts WHERE outgoing_id = ? ORDER BY received_at, status_code", (outgoing_id,)
        )
        return [Receipt(**dict(row)) for row in rows]

    # --- health -------------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with relaxed(self.db):
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table, column in (("outgoing", "kind"), ("incoming", "message_type")):
            for row in self.db.execute(f"SELECT {column} AS k, state, count(*) AS n FROM {table} GROUP BY 1, 2"):  # noqa: S608
                out[f"{table}.{row['k']}.{row['state']}"] = row["n"]
        oldest = self.db.execute("SELECT min(created_at) FROM outgoing WHERE state = 'queued'").fetchone()[0]
        out["oldest_queued_at"] = oldest
        out["unacknowledged"] = self.db.execute(
            "SELECT count(*) FROM incoming WHERE state != 'listed' AND acked = 0"
        ).fetchone()[0]
        return out

    def failed(self) -> list[Outgoing]:
        return [_outgoing(row) for row in self.db.execute("SELECT * FROM outgoing WHERE state = 'failed'")]

    # --- reports ------------------------------------------------------------------------------
    # Periods are half-open [start, end) in Vietnam wall-clock ISO text, as document_time is.

    def sent_between(self, start: str, end: str) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = 'edoc' AND state = 'sent'"
            " AND document_time >= ? AND document_time < ?",
            (start, end),
        )
        return [_outgoing(row) for row in rows]

    def received_between(self, start: str, end: str) -> list[Incoming]:
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE message_type = 'edoc' AND state = 'delivered'"
            " AND document_time >= ? AND document_time < ?",
            (start, end),
        )
        return [_incoming(row) for row in rows]

    def statuses_answering(self, axis_doc_ids: Iterable[str]) -> list[Outgoing]:
        """The statuses we sent about documents we received (01-06, 02, 15, 16)."""
        ids = list(axis_doc_ids)
        found: list[Outgoing] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT * FROM outgoing WHERE kind = 'status' AND answers IN ({marks})",  # noqa: S608
                chunk,
            )
            found.extend(_outgoing(row) for row in rows)
        return found

    def recalls_received(self, document_ids: Iterable[str]) -> int:
        ids = list(document_ids)
        count = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            count += self.db.execute(
                f"SELECT count(*) FROM incoming WHERE message_type = 'status' AND status_code = '13'"  # noqa: S608
                f" AND state = 'recorded' AND document_id IN ({marks})",
                chunk,
            ).fetchone()[0]
        return count

    def outgoing_for_kind(self, kind: str) -> list[Outgoing]:
        return [_outgoing(row) for row in self.db.execute("SELECT * FROM outgoing WHERE kind = ?", (kind,))]

    def known_files(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT file FROM outgoing")}


def _outgoing(row: sqlite3.Row) -> Outgoing:
    values = dict(row)
    values["to_codes"] = tuple(json.loads(values["to_codes"]))
    return Outgoing(**values)


def _incoming(row: sqlite3.Row) -> Incoming:
    return Incoming(**dict(row))
