"""How far the exchange has come, read from the gateways' own databases as they run (read-only
connections, beside the writer; WAL lets both be): documents delivered into an inbox, statuses
back at the senders of what they answer, recalls at the recipients. Counted incrementally by
rowid, so a poll costs what is new, not the quarter so far."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Key = tuple[str, str, str]  # (recipient, sender, DocumentId) of a delivered document

FINAL = ("delivered", "duplicate", "rejected", "recorded")


@dataclass
class _Cursor:
    incoming: int = 0  # every incoming row up to this rowid is settled and counted
    receipts: int = 0


class Progress:
    def __init__(self, databases: list[Path]) -> None:
        self.databases = databases
        self._connections: dict[Path, sqlite3.Connection] = {}
        self._cursors = {path: _Cursor() for path in databases}
        self.delivered = 0  # documents delivered into an inbox (one per recipient agency)
        self.refused = 0  # documents the recipient's gateway refused (02, kept in .rejected)
        self.receipts = 0  # statuses recorded by the senders of what they answer (01, 02, 03, 06, 15)
        self.recalls = 0  # recalls (13) recorded by recipients
        self._watched: set[Key] = set()
        self._arrived: list[Key] = []

    def watch(self, keys: Iterable[Key]) -> None:
        """The documents to tell about when they are delivered (:meth:`take_arrived`), instead
        of those watched before: a step's documents that are to be answered, so that each
        answer is dropped as soon as its document is there."""
        self._watched = set(keys)
        self._arrived = []

    def take_arrived(self) -> list[Key]:
        """The watched documents delivered since the last call."""
        arrived, self._arrived = self._arrived, []
        return arrived

    def _connection(self, path: Path) -> sqlite3.Connection | None:
        if path not in self._connections:
            if not path.exists():
                return None
            self._connections[path] = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        return self._connections[path]

    def poll(self) -> None:
        for path in self.databases:
            db = self._connection(path)
            if db is None:
                continue
            cursor = self._cursors[path]
            rows = db.execute(
                "SELECT rowid, state, message_type, status_code, to_code, from_code, document_id FROM incoming"
                " WHERE rowid > ? ORDER BY rowid",
                (cursor.incoming,),
            ).fetchall()
            for rowid, state, message_type, status_code, to_code, from_code, document_id in rows:
                if state not in FINAL:
                    break  # counted when it has settled; the rows after it are read again
                if message_type == "edoc":
                    self.delivered += state == "delivered"
                    key = (to_code, from_code, document_id)
                    if state == "delivered" and key in self._watched:
                        self._watched.discard(key)
                        self._arrived.append(key)
                    self.refused += state == "rejected"
                elif status_code == "13" and state == "recorded":
                    self.recalls += 1
                cursor.incoming = rowid
            found = db.execute(
                "SELECT count(*), max(rowid) FROM receipts WHERE rowid > ?", (cursor.receipts,)
            ).fetchone()
            if found[0]:
                self.receipts += found[0]
                cursor.receipts = found[1]

    def close(self) -> None:
        for db in self._connections.values():
            db.close()
