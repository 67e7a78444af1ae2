"""The gateway's durable record: what it sent, received, answered and was told.

One SQLite file (WAL, synchronous=FULL) under data_dir; this package is the only place
that knows table names. Every state change is one transaction, and every move of a
message's state goes through the table in gateway/store/states.py. Signed outgoing
messages live as files under ``data_dir/outgoing`` (written and fsynced before the row
that names them commits). What the daemon does in one step (deliver a document and queue
its 01, reject one and queue its 02, record a status and its receipt) is one method here,
owning its transaction.

The record has three faces on one connection: ``outgoing`` (the queue and its receipts),
``incoming`` (what the axis listed and how each ended) and ``reports`` (read-only questions).
"""

from __future__ import annotations

from pathlib import Path

from gateway.sqlite import connect, connect_to_look, relaxed, transaction
from gateway.store.incoming import IncomingTable
from gateway.store.outgoing import OutgoingTable
from gateway.store.reports import ReportQueries
from gateway.store.schema import OWNER, migrate, readable_as_it_is


class GatewayStore:
    def __init__(self, data_dir: Path, *, looking: bool = False) -> None:
        """``looking``: only read (health, track, list, report): nothing made or migrated, and
        readable by a member of the service's group who may not write there."""
        self.data_dir = data_dir
        self.outgoing_dir = data_dir / "outgoing"
        self.path = data_dir / "gateway.sqlite3"
        if looking:
            self.db = connect_to_look(self.path)
            readable_as_it_is(self.db)
        else:
            for folder in (data_dir, self.outgoing_dir):
                folder.mkdir(parents=True, exist_ok=True)
            self.db = connect(self.path)
            migrate(self.db)
        self.outgoing = OutgoingTable(self.db, self.outgoing_dir)
        self.incoming = IncomingTable(self.db)
        self.reports = ReportQueries(self.db)

    def claim(self, owner: str) -> None:
        """Rows from before one installation hosted many agencies (schema v7) belong to its own
        agency: said once, the first time the installation opens its record."""
        if self.meta(OWNER) is not None:
            return
        with transaction(self.db) as db:
            db.execute("UPDATE outgoing SET from_code = ? WHERE from_code IS NULL", (owner,))
            db.execute("UPDATE incoming SET to_code = ? WHERE to_code IS NULL", (owner,))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (OWNER, owner))

    def close(self) -> None:
        self.db.close()

    def set_meta(self, key: str, value: str) -> None:
        """Remember a small fact about this gateway (health's last contacts, the running number)."""
        with relaxed(self.db):
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]
