"""The gateway's durable record: what it sent, received, answered and was told.

One SQLite file (WAL, synchronous=FULL) under data_dir; this package is the only place
that knows table names. Every state change is one transaction, and every move of a
message's state goes through the table in gateway/store/states.py. Signed outgoing
messages live as files under ``data_dir/outgoing`` (written and fsynced before the row
that names them commits). What the daemon does in one step (deliver a document and queue
its 01, reject one and queue its 02, record a status and its receipt) is one method here,
owning its transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from gateway.sqlite import connect, relaxed, transaction
from gateway.store import states
from gateway.store.records import Incoming, NewOutgoing, Outgoing, Receipt, Settled, incoming_row, outgoing_row
from gateway.store.reports import ReportQueries
from gateway.store.schema import DOCUMENTS_QUEUED, migrate
from gateway.store.states import INCOMING_MOVES, OUTGOING_MOVES, IncomingState, OutgoingState


class GatewayStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.outgoing_dir = data_dir / "outgoing"
        for folder in (data_dir, self.outgoing_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "gateway.sqlite3"
        self.db = connect(self.path)
        migrate(self.db)
        self.reports = ReportQueries(self.db)

    def close(self) -> None:
        self.db.close()

    # --- outgoing -----------------------------------------------------------------------------

    def new_outgoing_file(self) -> tuple[str, Path]:
        outgoing_id = str(uuid.uuid4())
        return outgoing_id, self.outgoing_dir / f"{outgoing_id}.edxml"

    def outgoing_by_source(self, source_key: str) -> Outgoing | None:
        row = self.db.execute("SELECT * FROM outgoing WHERE source_key = ?", (source_key,)).fetchone()
        return None if row is None else outgoing_row(row)

    def queue(
        self,
        outgoing_id: str,
        message: NewOutgoing,
        *,
        source_key: str,
        deadline_seconds: float,
        settling: tuple[str, Settled] | None = None,
    ) -> Outgoing | None:
        """Record a signed message already written to its file, queued; with ``settling``
        (axis DocId, outcome), the incoming message it answers settles in the same transaction.

        None, and nothing recorded, when a message from ``source_key`` was queued before.
        """
        now = time.time()
        try:
            with transaction(self.db) as db:
                db.execute(
                    "INSERT INTO outgoing (id, kind, document_id, source_key, file, state, attempts, next_attempt_at,"
                    " deadline_at, created_at, subject, status_code, paper, digitized, to_codes, answers,"
                    " document_time) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        outgoing_id,
                        message.kind,
                        message.document_id,
                        source_key,
                        f"{outgoing_id}.edxml",
                        OutgoingState.QUEUED,
                        now,
                        now + deadline_seconds,
                        now,
                        message.subject,
                        message.status_code,
                        int(message.paper),
                        int(message.digitized),
                        json.dumps(list(message.to_codes)),
                        message.answers,
                        message.document_time,
                    ),
                )
                if message.kind == "edoc":  # the running number, in the same transaction as the row it counts
                    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?", (DOCUMENTS_QUEUED,))
                if settling is not None:
                    self._settle(db, *settling)
        except sqlite3.IntegrityError:
            if self.outgoing_by_source(source_key) is None:
                raise
            return None
        return self.outgoing_by_source(source_key)

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
        return [outgoing_row(row) for row in rows]

    def mark_sent(self, outgoing_id: str, axis_doc_id: str) -> None:
        with transaction(self.db, durable=False) as db:
            self._move_outgoing(
                db,
                outgoing_id,
                OutgoingState.SENT,
                "axis_doc_id = ?, sent_at = ?, attempts = attempts + 1, last_error = NULL",
                (axis_doc_id, time.time()),
            )

    def postpone_outgoing(self, outgoing_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE outgoing SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (time.time() + delay, error, outgoing_id),
            )

    def fail_outgoing(self, outgoing_id: str, error: str) -> None:
        with transaction(self.db) as db:
            self._move_outgoing(
                db, outgoing_id, OutgoingState.FAILED, "attempts = attempts + 1, last_error = ?", (error,)
            )

    def overdue_outgoing(self) -> list[Outgoing]:
        rows = self.db.execute("SELECT * FROM outgoing WHERE state = 'queued' AND deadline_at < ?", (time.time(),))
        return [outgoing_row(row) for row in rows]

    def requeue(self, document_id: str, deadline_seconds: float) -> list[Outgoing]:
        """Failed messages with this DocumentId (or local id) go back to the queue; returns them."""
        now = time.time()
        with transaction(self.db) as db:
            rows = db.execute(
                "SELECT * FROM outgoing WHERE state = ? AND (document_id = ? OR id = ?)",
                (OutgoingState.FAILED, document_id, document_id),
            ).fetchall()
            for row in rows:
                self._move_outgoing(
                    db,
                    row["id"],
                    OutgoingState.QUEUED,
                    "next_attempt_at = ?, deadline_at = ?, last_error = NULL",
                    (now, now + deadline_seconds),
                )
        return [outgoing_row(row) for row in rows]

    def _move_outgoing(
        self, db: sqlite3.Connection, outgoing_id: str, target: OutgoingState, sets: str, values: tuple[Any, ...]
    ) -> None:
        allowed = states.sources(OUTGOING_MOVES, target)
        moved = db.execute(
            f"UPDATE outgoing SET state = ?, {sets} WHERE id = ? AND state IN ({','.join('?' * len(allowed))})",  # noqa: S608
            (target, *values, outgoing_id, *allowed),
        )
        if moved.rowcount != 1:
            row = db.execute("SELECT state FROM outgoing WHERE id = ?", (outgoing_id,)).fetchone()
            raise states.refuse("outgoing message", outgoing_id, row[0] if row else None, target)

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
        return None if row is None else outgoing_row(row)

    def outgoing_for(self, document_id: str) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE document_id = ? OR id = ? ORDER BY created_at", (document_id, document_id)
        )
        return [outgoing_row(row) for row in rows]

    def outgoing_file(self, item: Outgoing) -> Path:
        return self.outgoing_dir / item.file

    # --- incoming -----------------------------------------------------------------------------

    def note_listed(
        self, axis_doc_id: str, message_type: str, from_code: str, accepted_at: float | None = None
    ) -> bool:
        """Remember a listed item (and when the axis accepted it, if it says); True when it is new."""
        with relaxed(self.db):  # forgotten in a power failure, it is simply listed again
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO incoming (axis_doc_id, message_type, state, acked, from_code, attempts,"
                " next_attempt_at, listed_at, paper, digitized, accepted_at) VALUES (?, ?, ?, 0, ?, 0, ?, ?, 0, 0, ?)",
                (axis_doc_id, message_type, IncomingState.LISTED, from_code, time.time(), time.time(), accepted_at),
            )
        return cursor.rowcount == 1

    def incoming(self, axis_doc_id: str) -> Incoming | None:
        row = self.db.execute("SELECT * FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()
        return None if row is None else incoming_row(row)

    def due_incoming(self, limit: int, *, longest_wait: float) -> list[Incoming]:
        """Listed messages due for fetching; ``longest_wait`` as in :meth:`due_outgoing`."""
        now = time.time()
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE state = 'listed' AND (next_attempt_at <= ? OR next_attempt_at > ?)"
            " ORDER BY listed_at LIMIT ?",
            (now, now + longest_wait, limit),
        )
        return [incoming_row(row) for row in rows]

    def unacknowledged(self, limit: int) -> list[Incoming]:
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE state != 'listed' AND acked = 0 AND next_attempt_at <= ? LIMIT ?",
            (time.time(), limit),
        )
        return [incoming_row(row) for row in rows]

    def senders_of(self, document_ids: tuple[str, ...]) -> set[str]:
        """The agencies that delivered a document to us under any of these DocumentIds."""
        marks = ",".join("?" * len(document_ids))
        rows = self.db.execute(
            # the state written out, not bound: only then can SQLite use the partial index on it
            f"SELECT DISTINCT from_code FROM incoming INDEXED BY incoming_document WHERE document_id IN ({marks})"  # noqa: S608
            f" AND state = '{IncomingState.DELIVERED}'",
            document_ids,
        )
        return {row[0] for row in rows}

    def delivered_copy(self, from_code: str, document_id: str) -> Incoming | None:
        row = self.db.execute(
            "SELECT * FROM incoming WHERE from_code = ? AND document_id = ? AND state = 'delivered'",
            (from_code, document_id),
        ).fetchone()
        return None if row is None else incoming_row(row)

    def settle(self, axis_doc_id: str, settled: Settled, *, receipt: Receipt | None = None) -> None:
        """A listed message ends (duplicate, or a status recorded with its receipt), in one transaction."""
        with transaction(self.db) as db:
            self._settle(db, axis_doc_id, settled)
            if receipt is not None:
                db.execute(
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

    def _settle(self, db: sqlite3.Connection, axis_doc_id: str, settled: Settled) -> None:
        allowed = states.sources(INCOMING_MOVES, settled.state)
        marks = ",".join("?" * len(allowed))  # placeholders only: the states are parameters
        sql = (
            "UPDATE incoming SET state = ?, from_code = ?, document_id = ?, subject = ?, status_code = ?, reason = ?,"  # noqa: S608
            " inbox_id = ?, paper = ?, digitized = ?, finished_at = ?, next_attempt_at = ?, document_time = ?"
            f" WHERE axis_doc_id = ? AND state IN ({marks})"
        )
        moved = db.execute(
            sql,
            (
                settled.state,
                settled.from_code,
                settled.document_id,
                settled.subject,
                settled.status_code,
                settled.reason,
                settled.inbox_id,
                int(settled.paper),
                int(settled.digitized),
                time.time(),
                time.time(),
                settled.document_time,
                axis_doc_id,
                *allowed,
            ),
        )
        if moved.rowcount != 1:
            row = db.execute("SELECT state FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()
            raise states.refuse("incoming message", axis_doc_id, row[0] if row else None, settled.state)

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
        return None if row is None else incoming_row(row)

    # --- receipts -----------------------------------------------------------------------------

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

    def known_files(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT file FROM outgoing")}
