"""Outgoing messages (gói tin gửi đi): queued signed messages, their sending, their receipts.

A small message's signed bytes are kept in ``outgoing_body`` and committed with its row; a
large one is queued with its file already written and fsynced (``outgoing.file``). It moves
queued → sent, or queued → failed → queued again by `retry`, through the table in states.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.errors import DocumentIdReused, IllegalTransition
from gateway.sqlite import transaction
from gateway.store import states
from gateway.store.incoming import settle_row
from gateway.store.records import NewOutgoing, Outgoing, Receipt, Settled, outgoing_row
from gateway.store.schema import DOCUMENTS_QUEUED
from gateway.store.states import OUTGOING_MOVES, OutgoingState
from gateway.vxp.vocabulary import MessageType


class OutgoingTable:
    def __init__(self, db: sqlite3.Connection, outgoing_dir: Path) -> None:
        self.db = db
        self.outgoing_dir = outgoing_dir

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def path_for(self, outgoing_id: str) -> Path:
        """Where a large message's signed file is written (a small one is kept in its row)."""
        return self.outgoing_dir / f"{outgoing_id}.edxml"

    def by_source(self, source_key: str) -> Outgoing | None:
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
        body: bytes | None = None,
    ) -> Outgoing | None:
        """Record a signed message queued: ``body``, its bytes, kept with the row, or (None) the
        file written and fsynced at :meth:`path_for` before; with ``settling``
        (axis DocId, outcome), the incoming message it answers settles in the same transaction.

        None, and nothing recorded, when a message from ``source_key`` was queued before. The
        row queued earlier, and nothing recorded, when it holds the same document under the same
        DocumentId (a resend; a failed one goes back to the queue with the message signed now,
        ``body`` or the new file, in place of its own); DocumentIdReused when it holds another one.
        """
        now = time.time()
        try:
            with transaction(self.db) as db:
                if message.content_digest is not None:
                    earlier = self._same_document_id(db, message)
                    if earlier is not None and earlier.state is OutgoingState.FAILED:
                        self._move(
                            db,
                            earlier.id,
                            OutgoingState.QUEUED,
                            "next_attempt_at = ?, deadline_at = ?, last_error = NULL",
                            (now, now + deadline_seconds),
                        )
                        # with the message signed now: what failed may have been its bytes (a
                        # certificate since renewed, a signed file lost), which `retry` resends
                        db.execute("DELETE FROM outgoing_body WHERE id = ?", (earlier.id,))
                        if body is not None:
                            db.execute("INSERT INTO outgoing_body (id, signed) VALUES (?, ?)", (earlier.id, body))
                        new_file = "" if body is not None else self.path_for(outgoing_id).name
                        db.execute("UPDATE outgoing SET file = ? WHERE id = ?", (new_file, earlier.id))
                        earlier = outgoing_row(
                            db.execute("SELECT * FROM outgoing WHERE id = ?", (earlier.id,)).fetchone()
                        )
                    if earlier is not None:
                        return earlier  # the same document again: it stands once
                db.execute(
                    "INSERT INTO outgoing (id, kind, document_id, source_key, file, state, attempts, next_attempt_at,"
                    " deadline_at, created_at, subject, status_code, paper, digitized, to_codes, answers,"
                    " document_time, content_digest, from_code)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        outgoing_id,
                        message.kind,
                        message.document_id,
                        source_key,
                        "" if body is not None else self.path_for(outgoing_id).name,
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
                        message.content_digest,
                        message.from_code,
                    ),
                )
                if body is not None:
                    db.execute("INSERT INTO outgoing_body (id, signed) VALUES (?, ?)", (outgoing_id, body))
                if message.kind is MessageType.EDOC:  # the running number, in the same transaction as the row it counts
                    db.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?",
                        (_counter(message.from_code),),
                    )
                if settling is not None:
                    settle_row(db, *settling)
        except sqlite3.IntegrityError:
            if self.by_source(source_key) is None:
                raise
            return None
        return self.by_source(source_key)

    @staticmethod
    def _same_document_id(db: sqlite3.Connection, message: NewOutgoing) -> Outgoing | None:
        """The document queued before under ``message``'s DocumentId when it is the same one; an
        error when it is another (a clerk resending a corrected document under the same number)."""
        row = db.execute(
            "SELECT * FROM outgoing WHERE kind = ? AND document_id = ? AND state != ? ORDER BY created_at LIMIT 1",
            (MessageType.EDOC, message.document_id, OutgoingState.ABANDONED),
        ).fetchone()
        if row is None or row["content_digest"] is None:
            return None
        if row["content_digest"] == message.content_digest:
            return outgoing_row(row)
        raise DocumentIdReused(
            f"DocumentId {message.document_id} was already used for another document ({row['state']},"
            f" subject {row['subject']!r}); give this one another number, or send it as an update or"
            " replacement of the first (business_type 2 or 3)"
        )

    def due(
        self, kind: MessageType, limit: int, *, longest_wait: float, excluding: frozenset[str] = frozenset()
    ) -> list[Outgoing]:
        """Queued messages whose time has come, except those of the agencies ``excluding`` names.

        ``longest_wait`` is the longest postponement ever given: a row scheduled further ahead
        than that was scheduled by a clock that has since been set back (an NTP correction
        after running fast), and is due now rather than hours later.
        """
        now = time.time()
        held = ",".join("?" * len(excluding))
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = ? AND state = ?"  # noqa: S608 (placeholders only)
            " AND (next_attempt_at <= ? OR next_attempt_at > ?)"
            + (f" AND (from_code IS NULL OR from_code NOT IN ({held}))" if excluding else "")
            + " ORDER BY next_attempt_at LIMIT ?",
            (kind, OutgoingState.QUEUED, now, now + longest_wait, *sorted(excluding), limit),
        )
        return [outgoing_row(row) for row in rows]

    def mark_sent(self, outgoing_id: str, axis_doc_id: str) -> None:
        unmarked = self.mark_all_sent([(outgoing_id, axis_doc_id)])
        if unmarked:
            raise IllegalTransition(unmarked[outgoing_id])

    def mark_all_sent(self, sent: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Messages the axis took, each with the DocId it gave, in one transaction; returns why,
        by id, for those that could not be marked (moved meanwhile, by an administrator's
        command say): the others are marked all the same."""
        now = time.time()
        unmarked: dict[str, str] = {}
        with transaction(self.db, durable=False) as db:
            for outgoing_id, axis_doc_id in sent:
                try:
                    self._move(
                        db,
                        outgoing_id,
                        OutgoingState.SENT,
                        "axis_doc_id = ?, sent_at = ?, attempts = attempts + 1, last_error = NULL",
                        (axis_doc_id, now),
                    )
                except IllegalTransition as exc:
                    unmarked[outgoing_id] = str(exc)
        return unmarked

    def postpone(self, outgoing_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE outgoing SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (time.time() + delay, error, outgoing_id),
            )

    def fail(self, outgoing_id: str, error: str) -> None:
        with transaction(self.db) as db:
            self._move(db, outgoing_id, OutgoingState.FAILED, "attempts = attempts + 1, last_error = ?", (error,))

    def overdue(self, excluding: frozenset[str] = frozenset()) -> list[Outgoing]:
        """Queued messages past their deadline, except those of the agencies ``excluding`` names
        (held: the axis does not have them yet; their deadline runs from their release)."""
        # 'queued' written out, not bound: only then can SQLite use the partial index outgoing_queued_deadline
        rows = self.db.execute("SELECT * FROM outgoing WHERE state = 'queued' AND deadline_at < ?", (time.time(),))
        return [item for item in map(outgoing_row, rows) if item.from_code not in excluding]

    def renew_deadlines(self, from_codes: frozenset[str], deadline_seconds: float) -> None:
        """The queued messages of agencies just released from holding get a full deadline again."""
        marks = ",".join("?" * len(from_codes))
        with transaction(self.db) as db:
            db.execute(
                f"UPDATE outgoing SET deadline_at = max(deadline_at, ?) WHERE state = 'queued'"  # noqa: S608
                f" AND from_code IN ({marks})",
                (time.time() + deadline_seconds, *sorted(from_codes)),
            )

    def requeue(self, document_id: str, deadline_seconds: float) -> list[Outgoing]:
        """Failed messages with this DocumentId (or local id) go back to the queue; returns them."""
        now = time.time()
        return self._move_failed(
            document_id,
            OutgoingState.QUEUED,
            "next_attempt_at = ?, deadline_at = ?, last_error = NULL",
            (now, now + deadline_seconds),
        )

    def abandon(self, document_id: str, *, by: str, reason: str) -> list[Outgoing]:
        """Failed messages with this DocumentId (or local id) are given up for good; returns them."""
        return self._move_failed(
            document_id,
            OutgoingState.ABANDONED,
            "abandoned_at = ?, abandoned_by = ?, abandon_reason = ?",
            (time.time(), by, reason),
        )

    def _move_failed(
        self, document_id: str, target: OutgoingState, sets: str, values: tuple[Any, ...]
    ) -> list[Outgoing]:
        """Every failed message with this DocumentId (or local id) moved to ``target``, in one transaction."""
        with transaction(self.db) as db:
            ids = [
                row["id"]
                for row in db.execute(
                    "SELECT id FROM outgoing WHERE state = ? AND (document_id = ? OR id = ?)",
                    (OutgoingState.FAILED, document_id, document_id),
                )
            ]
            for outgoing_id in ids:
                self._move(db, outgoing_id, target, sets, values)
        return [item for item in self.for_document(document_id) if item.id in ids]

    def _move(
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

    def documents_queued(self, from_code: str | None = None) -> int:
        """How many documents this agency has ever queued (the default running number: each
        hosted agency numbers its own documents).

        Kept in meta and counted up with each document queued: counting the rows took 12 ms
        per document at 200,000 of them, and a gateway keeps every quarter's documents.
        The rows are counted once, when a database has no counter yet.
        """
        key = _counter(from_code)
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        value = None if row is None else row[0]
        if value is not None:
            return int(value)
        with transaction(self.db) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM outgoing WHERE kind = ? AND from_code IS ?", (MessageType.EDOC, from_code)
            ).fetchone()
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, str(count)))
        return int(count)

    def by_axis_doc_id(self, axis_doc_id: str) -> Outgoing | None:
        row = self.db.execute("SELECT * FROM outgoing WHERE axis_doc_id = ? LIMIT 1", (axis_doc_id,)).fetchone()
        return None if row is None else outgoing_row(row)

    def sent_document(self, document_id: str) -> Outgoing | None:
        """The document we sent under ``document_id``: one abandoned only when no other has it
        since (a DocumentId may be queued again once its document is abandoned)."""
        row = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = ? AND document_id = ? ORDER BY state = ?, created_at LIMIT 1",
            (MessageType.EDOC, document_id, OutgoingState.ABANDONED),
        ).fetchone()
        return None if row is None else outgoing_row(row)

    def for_document(self, document_id: str) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE document_id = ? OR id = ? ORDER BY created_at", (document_id, document_id)
        )
        return [outgoing_row(row) for row in rows]

    def file(self, item: Outgoing) -> Path:
        """The signed file of a message not kept in the database (see :meth:`kept`)."""
        return self.outgoing_dir / item.file

    def kept(self, outgoing_ids: Sequence[str]) -> dict[str, bytes]:
        """The signed bytes of those of these messages kept in the database, by id."""
        rows = self.db.execute(
            "SELECT id, signed FROM outgoing_body WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(outgoing_ids)),),
        )
        return dict(rows)

    def signed(self, item: Outgoing) -> bytes:
        """A message's signed bytes, wherever they are kept (whole: for a command, not for sending)."""
        kept = self.kept([item.id])
        return kept[item.id] if item.id in kept else self.file(item).read_bytes()

    def receipts_for(self, outgoing_id: str) -> list[Receipt]:
        rows = self.db.execute(
            "SELECT * FROM receipts WHERE outgoing_id = ? ORDER BY received_at, status_code", (outgoing_id,)
        )
        return [Receipt(**dict(row)) for row in rows]

    def known_files(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT file FROM outgoing WHERE file != ''")}


def _counter(from_code: str | None) -> str:
    """The meta key of an agency's running number."""
    return DOCUMENTS_QUEUED if from_code is None else f"{DOCUMENTS_QUEUED}:{from_code}"
