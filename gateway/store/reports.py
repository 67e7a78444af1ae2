"""The read-only questions asked of a gateway's record: the quarterly report's, and `health`'s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from gateway.store.records import Incoming, Outgoing, incoming_row, outgoing_row


class ReportQueries:
    """Periods are half-open [start, end) in Vietnam wall-clock ISO text, as document_time is."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def sent_between(self, start: str, end: str) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM outgoing WHERE kind = 'edoc' AND state = 'sent'"
            " AND document_time >= ? AND document_time < ?",
            (start, end),
        )
        return [outgoing_row(row) for row in rows]

    def received_between(self, start: str, end: str) -> list[Incoming]:
        rows = self.db.execute(
            "SELECT * FROM incoming WHERE message_type = 'edoc' AND state = 'delivered'"
            " AND document_time >= ? AND document_time < ?",
            (start, end),
        )
        return [incoming_row(row) for row in rows]

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
            found.extend(outgoing_row(row) for row in rows)
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
        return [outgoing_row(row) for row in self.db.execute("SELECT * FROM outgoing WHERE kind = ?", (kind,))]

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
        return [outgoing_row(row) for row in self.db.execute("SELECT * FROM outgoing WHERE state = 'failed'")]
