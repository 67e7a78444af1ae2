"""Incoming messages (gói tin nhận): listed by the axis, then delivered, refused or recorded.

A listed message ends once, through the table in states.py; whether the axis was told
(``acked``) is bookkeeping beside the state, repeated when the axis lists it again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from gateway.sqlite import relaxed, transaction
from gateway.store import states
from gateway.store.records import Incoming, Receipt, Settled, incoming_row
from gateway.store.states import INCOMING_MOVES, IncomingState
from gateway.vxp.vocabulary import MessageType


class IncomingTable:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def note_listed(
        self,
        axis_doc_id: str,
        message_type: str,
        from_code: str,
        accepted_at: float | None = None,
        *,
        to_code: str | None = None,
    ) -> bool:
        """Remember a listed item for hosted agency ``to_code`` (and when the axis accepted it,
        if it says); True when it is new."""
        with relaxed(self.db):  # forgotten in a power failure, it is simply listed again
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO incoming (axis_doc_id, message_type, state, acked, from_code, attempts,"
                " next_attempt_at, listed_at, paper, digitized, accepted_at, to_code)"
                " VALUES (?, ?, ?, 0, ?, 0, ?, ?, 0, 0, ?, ?)",
                (
                    axis_doc_id,
                    message_type,
                    IncomingState.LISTED,
                    from_code,
                    time.time(),
                    time.time(),
                    accepted_at,
                    to_code,
                ),
            )
        return cursor.rowcount == 1

    def forget_listed(self, axis_doc_id: str) -> None:
        """Drop a listed item nothing was done with (for an agency no longer hosted): the axis
        keeps it, and lists it again if the agency is hosted again."""
        with relaxed(self.db):
            self.db.execute(
                "DELETE FROM incoming WHERE axis_doc_id = ? AND state = ?", (axis_doc_id, IncomingState.LISTED)
            )

    def get(self, axis_doc_id: str) -> Incoming | None:
        row = self.db.execute("SELECT * FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()
        return None if row is None else incoming_row(row)

    def due(self, limit: int, *, longest_wait: float) -> list[Incoming]:
        """Listed messages due for fetching; ``longest_wait`` as in :meth:`OutgoingTable.due`."""
        now = time.time()
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE state = ? AND (next_attempt_at <= ? OR next_attempt_at > ?)"
            " ORDER BY listed_at LIMIT ?",
            (IncomingState.LISTED, now, now + longest_wait, limit),
        )
        return [incoming_row(row) for row in rows]

    def unacknowledged(self, limit: int) -> list[Incoming]:
        rows = self.db.execute(
            # states written out, not bound, here and below: only then can SQLite use the partial
            # indexes on them (incoming_unacknowledged, incoming_once_per_agency)
            "SELECT * FROM incoming WHERE state != 'listed' AND acked = 0 AND next_attempt_at <= ? LIMIT ?",
            (time.time(), limit),
        )
        return [incoming_row(row) for row in rows]

    def senders_of(self, document_ids: tuple[str, ...]) -> set[str]:
        """The agencies that delivered a document to us under any of these DocumentIds."""
        marks = ",".join("?" * len(document_ids))
        rows = self.db.execute(
            f"SELECT DISTINCT from_code FROM incoming INDEXED BY incoming_about WHERE document_id IN ({marks})"  # noqa: S608
            f" AND state = 'delivered'",
            document_ids,
        )
        return {row[0] for row in rows}

    def delivered_copy(self, from_code: str, document_id: str, to_code: str | None) -> Incoming | None:
        """The copy of a document delivered to hosted agency ``to_code``, if one was."""
        row = self.db.execute(
            "SELECT * FROM incoming WHERE to_code IS ? AND from_code = ? AND document_id = ? AND state = 'delivered'",
            (to_code, from_code, document_id),
        ).fetchone()
        return None if row is None else incoming_row(row)

    def settle(self, axis_doc_id: str, settled: Settled, *, receipt: Receipt | None = None) -> None:
        """A listed message ends (duplicate, or a status recorded with its receipt), in one transaction."""
        with transaction(self.db) as db:
            settle_row(db, axis_doc_id, settled)
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

    def postpone(self, axis_doc_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE incoming SET attempts = attempts + 1, next_attempt_at = ?, reason = ? WHERE axis_doc_id = ?",
                (time.time() + delay, error, axis_doc_id),
            )

    def forget_acknowledgement(self, axis_doc_id: str) -> None:
        """The axis lists it again: our acknowledgement was lost and must be repeated."""
        self.db.execute("UPDATE incoming SET acked = 0 WHERE axis_doc_id = ?", (axis_doc_id,))

    def mark_acked(self, axis_doc_ids: Sequence[str]) -> None:
        with transaction(self.db, durable=False):  # forgotten in a power failure, the axis is asked again
            self.db.executemany("UPDATE incoming SET acked = 1 WHERE axis_doc_id = ?", [(i,) for i in axis_doc_ids])

    def postpone_ack(self, axis_doc_ids: Sequence[str], delay: float) -> None:
        later = time.time() + delay
        with transaction(self.db, durable=False):  # forgotten, it is only asked again sooner
            self.db.executemany(
                "UPDATE incoming SET next_attempt_at = ? WHERE axis_doc_id = ?", [(later, i) for i in axis_doc_ids]
            )

    def received(self, reference: str) -> Incoming | None:
        """The document received under this inbox folder, axis DocId or DocumentId, however it
        ended: delivered first, else refused, else a duplicate copy."""
        row = self.db.execute(
            # SQLite answers the OR from one index a name (incoming_inbox, the primary key,
            # incoming_about) only while no other term is indexable on its own: the unary +
            # keeps it from the state index, which holds the whole history of a state
            "SELECT * FROM incoming WHERE (inbox_id = ? OR axis_doc_id = ? OR document_id = ?)"
            " AND +message_type = ? AND +state IN (?, ?, ?)"
            " ORDER BY CASE state WHEN ? THEN 0 WHEN ? THEN 1 ELSE 2 END, listed_at LIMIT 1",
            (
                reference,
                reference,
                reference,
                MessageType.EDOC,
                IncomingState.DELIVERED,
                IncomingState.REJECTED,
                IncomingState.DUPLICATE,
                IncomingState.DELIVERED,
                IncomingState.REJECTED,
            ),
        ).fetchone()
        return None if row is None else incoming_row(row)

    def delivered_to(self, reference: str) -> list[Incoming]:
        """Every delivered copy of the document this inbox folder, axis DocId or DocumentId names:
        one per hosted agency that received it."""
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE (inbox_id = ? OR axis_doc_id = ? OR document_id = ?)"
            " AND +state = 'delivered' AND +message_type = ?",  # the + as in received()
            (reference, reference, reference, MessageType.EDOC),
        )
        return [incoming_row(row) for row in rows]


def settle_row(db: sqlite3.Connection, axis_doc_id: str, settled: Settled) -> None:
    """Move a listed message to how it ended, inside the caller's transaction (illegal moves raise)."""
    allowed = states.sources(INCOMING_MOVES, settled.state)
    marks = ",".join("?" * len(allowed))  # placeholders only: the states are parameters
    sql = (
        "UPDATE incoming SET state = ?, from_code = ?, document_id = ?, subject = ?, status_code = ?, reason = ?,"  # noqa: S608
        " inbox_id = ?, paper = ?, digitized = ?, finished_at = ?, next_attempt_at = ?, document_time = ?,"
        " pdf_signed = ?, answering = ?"
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
            None if settled.pdf_signed is None else int(settled.pdf_signed),
            settled.answering,
            axis_doc_id,
            *allowed,
        ),
    )
    if moved.rowcount != 1:
        row = db.execute("SELECT state FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()
        raise states.refuse("incoming message", axis_doc_id, row[0] if row else None, settled.state)
