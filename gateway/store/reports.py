"""The read-only questions asked of a gateway's record: the quarterly report's, and `health`'s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.edxml import StatusCode
from gateway.store.records import Incoming, Outgoing, Receipt, incoming_row, outgoing_row
from gateway.store.states import IncomingState, OutgoingState
from gateway.vxp.vocabulary import MessageType


@dataclass(frozen=True)
class Agencies:
    """Which hosted agencies a question is about: ``codes`` (None: every one), with ``own`` the
    installation's own agency, which rows from before schema v7 (no code) belong to."""

    own: str
    codes: frozenset[str] | None = None

    def holds(self, code: str | None) -> bool:
        return self.codes is None or (code or self.own) in self.codes


class ReportQueries:
    """Periods are half-open [start, end) in Vietnam wall-clock ISO text, as document_time is."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def sent_between(self, start: str, end: str, agencies: Agencies) -> list[Outgoing]:
        """Documents the agencies sent in the period (``agencies``: which hosted ones, see :class:`Agencies`)."""
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = ? AND state = ? AND document_time >= ? AND document_time < ?",
            (MessageType.EDOC, OutgoingState.SENT, start, end),
        )
        return [item for item in map(outgoing_row, rows) if agencies.holds(item.from_code)]

    def received_between(self, start: str, end: str, agencies: Agencies) -> list[Incoming]:
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE message_type = ? AND state = ? AND document_time >= ? AND document_time < ?",
            (MessageType.EDOC, IncomingState.DELIVERED, start, end),
        )
        return [row for row in map(incoming_row, rows) if agencies.holds(row.to_code)]

    def rejected_between(self, start: float, end: float, agencies: Agencies) -> list[Incoming]:
        """Documents refused on arrival (02 — từ chối: schema, signature, recipient) that arrived
        in [start, end) (epoch seconds: when the axis accepted them, else when listed; such a
        document's own date may be unreadable)."""
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE message_type = ? AND state = ?"
            " AND coalesce(accepted_at, listed_at) >= ? AND coalesce(accepted_at, listed_at) < ?",
            (MessageType.EDOC, IncomingState.REJECTED, start, end),
        )
        return [row for row in map(incoming_row, rows) if agencies.holds(row.to_code)]

    def statuses_answering(self, axis_doc_ids: Iterable[str]) -> list[Outgoing]:
        """The statuses we sent, or will, about documents we received (01-06, 02, 15, 16): not
        those abandoned (given up, never to be sent)."""
        ids = list(axis_doc_ids)
        found: list[Outgoing] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT * FROM outgoing WHERE kind = ? AND state != ? AND answers IN ({marks})",  # noqa: S608
                (MessageType.STATUS, OutgoingState.ABANDONED, *chunk),
            )
            found.extend(outgoing_row(row) for row in rows)
        return found

    def recalls_received(self, document_ids: Iterable[str], agencies: Agencies | None = None) -> int:
        """Recall requests (13) recorded about these documents, by the hosted agencies asked about."""
        ids = list(document_ids)
        count = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT to_code FROM incoming WHERE message_type = ? AND status_code = ?"  # noqa: S608
                f" AND state = ? AND document_id IN ({marks})",
                (MessageType.STATUS, StatusCode.RECALL_REQUESTED.wire, IncomingState.RECORDED, *chunk),
            )
            count += sum(1 for (to_code,) in rows if agencies is None or agencies.holds(to_code))
        return count

    def outgoing_for_kind(self, kind: MessageType) -> list[Outgoing]:
        return [outgoing_row(row) for row in self.db.execute("SELECT * FROM outgoing WHERE kind = ?", (kind,))]

    def incoming_for_kind(self, kind: MessageType) -> list[Incoming]:
        rows = self.db.execute("SELECT * FROM incoming WHERE message_type = ? ORDER BY listed_at", (kind,))
        return [incoming_row(row) for row in rows]

    def statuses_received(self) -> list[tuple[str, Receipt]]:
        """Every status received about a message we sent, with that message's DocumentId, oldest first."""
        rows = self.db.execute(
            "SELECT o.document_id AS sent_document_id, r.* FROM receipts r JOIN outgoing o ON o.id = r.outgoing_id"
            " ORDER BY r.received_at, r.status_code"
        )
        return [(row["sent_document_id"], Receipt(**{k: row[k] for k in row.keys()[1:]})) for row in rows]

    def listing(
        self,
        *,
        sent: bool,
        state: str | None = None,
        peer: str | None = None,
        since: float | None = None,
        limit: int = 200,
        agency: str | None = None,
    ) -> list[Outgoing] | list[Incoming]:
        """Documents sent (or received), newest first, narrowed by state, peer, time and the
        hosted agency that sent (or received) them."""
        table, peer_clause, time_column = (
            ("outgoing", "to_codes LIKE ?", "created_at") if sent else ("incoming", "from_code = ?", "listed_at")
        )
        where, values = ["kind = ?" if sent else "message_type = ?"], [MessageType.EDOC]
        if state:
            where.append("state = ?")
            values.append(state)
        if peer:
            where.append(peer_clause)
            values.append(f'%"{peer}"%' if sent else peer)
        if since is not None:
            where.append(f"{time_column} >= ?")
            values.append(since)
        if agency:
            where.append("from_code = ?" if sent else "to_code = ?")
            values.append(agency)
        rows = self.db.execute(
            f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY {time_column} DESC LIMIT ?",  # noqa: S608
            (*values, limit),
        )
        return [outgoing_row(row) for row in rows] if sent else [incoming_row(row) for row in rows]

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table, column in (("outgoing", "kind"), ("incoming", "message_type")):
            for row in self.db.execute(f"SELECT {column} AS k, state, count(*) AS n FROM {table} GROUP BY 1, 2"):  # noqa: S608
                out[f"{table}.{row['k']}.{row['state']}"] = row["n"]
        oldest = self.db.execute(
            "SELECT min(created_at) FROM outgoing WHERE state = ?", (OutgoingState.QUEUED,)
        ).fetchone()[0]
        out["oldest_queued_at"] = oldest
        out["unacknowledged"] = self.db.execute(
            # written out, not bound: the partial index incoming_unacknowledged needs it
            "SELECT count(*) FROM incoming WHERE state != 'listed' AND acked = 0"
        ).fetchone()[0]
        return out

    def failed(self) -> list[Outgoing]:
        return [outgoing_row(row) for row in self.db.execute("SELECT * FROM outgoing WHERE state = 'failed'")]
