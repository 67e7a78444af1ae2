"""The axis's durable state: agencies, accepted documents, deliveries, seen requests.

One SQLite file (WAL) plus one file per accepted document under ``docs/``. A document's
file is written and fsynced before the transaction that records it commits, so a
committed row always has its file; files without a row (a crash between the two) are
removed at start. The only module that knows table names, with bridge_store.py for those
of the bridge to an upstream axis.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gateway.axis.records import Agency, Delivery, NewDocument
from gateway.axis.schema import migrate
from gateway.sqlite import GroupCommit, connect, transaction
from gateway.vxp.vocabulary import DeliveryState, MessageType


class AxisStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.docs_dir = data_dir / "docs"
        self.incoming_dir = data_dir / "incoming"
        for folder in (data_dir, self.docs_dir, self.incoming_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = data_dir / "axis.sqlite3"
        self.connection = connect(self.db_path)
        # Bookkeeping that is never durable (the replay memory, fetched and acknowledged marks:
        # lost in a power failure, they only repeat harmless work) on a connection of its own
        # whose commits skip the fsync without switching levels around each one.
        self.bookkeeping = connect(self.db_path, synchronous="NORMAL")
        # The WAL is copied into the database by checkpoint(), called from a worker thread: left
        # to SQLite, a commit on the event loop now and then does it, fsyncs included, and every
        # request waits behind it.
        self._checkpoints = connect(self.db_path)
        self._checkpoint_lock = threading.Lock()  # a checkpoint may still run in its thread at close
        for connection in (self.connection, self.bookkeeping):
            connection.execute("PRAGMA wal_autocheckpoint = 0")
        # Every call asks which agencies its system speaks for; the answer changes only through
        # this store (one process owns the data folder), which forgets it then.
        self._agencies_of: dict[str, frozenset[str]] = {}
        # Counted up with every change of the agencies table: getAgenciesList's encoded answer
        # (1,174 agencies, 240 KB) is kept until it moves.
        self.agencies_version = 0
        migrate(self.connection)
        # Documents accepted in the same turn of the event loop share one COMMIT and its fsync
        # (record_document through commits.run); each sender has its DocId only once it is durable.
        self.commits = GroupCommit(self.connection)

    def close(self) -> None:
        self.checkpoint()
        with self._checkpoint_lock:
            self._checkpoints.close()
        self.bookkeeping.close()
        self.connection.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed pages from the WAL into the database; safe to call from another thread.

        Returns (frames in the WAL, frames copied): equal when nothing was left behind.
        """
        with self._checkpoint_lock:
            _, frames, copied = self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, copied

    # --- schema ---------------------------------------------------------------------------------

    # --- agencies -------------------------------------------------------------------------------

    def seed_agencies(self, agencies: Iterable[tuple[str, str, str, str | None, bool]]) -> None:
        """Make the configured agencies (code, name, mail, system, locked) what the table says."""
        self._agencies_changed()
        with transaction(self.connection) as db:
            for code, name, mail, system_id, locked in agencies:
                db.execute(
                    "INSERT INTO agencies (code, name, mail, system_id, locked, source)"
                    " VALUES (?, ?, ?, ?, ?, 'config')"
                    " ON CONFLICT(code) DO UPDATE SET name = excluded.name, mail = excluded.mail,"
                    " system_id = excluded.system_id, locked = excluded.locked, source = 'config'",
                    (code, name, mail, system_id, int(locked)),
                )

    def _agencies_changed(self) -> None:
        """Before any write of the agencies table: what was derived from it is read anew."""
        self._agencies_of.clear()
        self.agencies_version += 1

    def agency(self, code: str) -> Agency | None:
        row = self.connection.execute("SELECT * FROM agencies WHERE code = ?", (code,)).fetchone()
        return None if row is None else _agency(row)

    def agencies(self) -> list[Agency]:
        return [_agency(row) for row in self.connection.execute("SELECT * FROM agencies ORDER BY code")]

    def agencies_of(self, system_id: str) -> frozenset[str]:
        known = self._agencies_of.get(system_id)
        if known is None:
            rows = self.connection.execute("SELECT code FROM agencies WHERE system_id = ?", (system_id,))
            known = self._agencies_of[system_id] = frozenset(row["code"] for row in rows)
        return known

    def register_agency(self, code: str, name: str, mail: str, system_id: str, parent: str | None = None) -> None:
        self._agencies_changed()
        with transaction(self.connection) as db:
            db.execute(
                "INSERT INTO agencies (code, name, mail, system_id, locked, source, parent)"
                " VALUES (?, ?, ?, ?, 0, 'registered', ?)"
                " ON CONFLICT(code) DO UPDATE SET name = excluded.name, mail = excluded.mail,"
                " parent = coalesce(excluded.parent, parent)",
                (code, name, mail, system_id, parent),
            )

    def delete_agency(self, code: str) -> None:
        self._agencies_changed()
        with transaction(self.connection) as db:
            db.execute("DELETE FROM agencies WHERE code = ? AND source = 'registered'", (code,))

    # --- replay memory --------------------------------------------------------------------------

    def remember_request(self, call: str, hash_header: str, keep_seconds: float) -> bool:
        """Record a request signature; False when it was already seen (a replay)."""
        now = time.time()
        try:
            with transaction(self.bookkeeping, durable=False) as db:
                db.execute(
                    "DELETE FROM seen_requests WHERE call = ? AND hash_header = ? AND expires_at < ?",
                    (call, hash_header, now),
                )
                db.execute(
                    "INSERT INTO seen_requests (call, hash_header, expires_at) VALUES (?, ?, ?)",
                    (call, hash_header, now + keep_seconds),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def requests_remembered(self, call: str) -> int:
        """How many signed requests of ``call`` the replay memory holds (each one, while it lasts)."""
        return self.connection.execute("SELECT count(*) FROM seen_requests WHERE call = ?", (call,)).fetchone()[0]

    def forget_expired_requests(self, batch: int = 2000) -> int:
        """Forget up to ``batch`` expired request signatures; how many were forgotten.

        In batches, so that the caller can let requests in between: at 100 documents a second
        the replay memory holds half a million signatures, and one DELETE of the expired ones
        held the event loop for the whole scan.
        """
        with transaction(self.bookkeeping, durable=False) as db:
            return db.execute(
                "DELETE FROM seen_requests WHERE rowid IN"
                " (SELECT rowid FROM seen_requests WHERE expires_at < ? LIMIT ?)",
                (time.time(), batch),
            ).rowcount

    # --- documents ------------------------------------------------------------------------------

    def find_duplicate(self, dedup_key: str) -> tuple[str, tuple[str, ...]] | None:
        """(sender docId, recipients) of a document already accepted under this key."""
        row = self.connection.execute(
            "SELECT sender_doc_id FROM documents WHERE dedup_key = ?", (dedup_key,)
        ).fetchone()
        if row is None:
            return None
        recipients = self.connection.execute(
            "SELECT to_code FROM deliveries WHERE sender_doc_id = ? ORDER BY to_code", (row["sender_doc_id"],)
        )
        return row["sender_doc_id"], tuple(r["to_code"] for r in recipients)

    def document_sha256(self, sender_doc_id: str) -> str | None:
        """The digest of a document's stored copy (None for an id not known here)."""
        row = self.connection.execute("SELECT sha256 FROM documents WHERE sender_doc_id = ?", (sender_doc_id,))
        found = row.fetchone()
        return found[0] if found else None

    def new_document_path(self) -> tuple[str, Path]:
        sender_doc_id = str(uuid.uuid4())
        return sender_doc_id, self.docs_dir / f"{sender_doc_id}.edxml"

    def record_document(
        self, sender_doc_id: str, document: NewDocument, *, forward_to: tuple[str, ...] = ()
    ) -> list[str]:
        """One transaction: the document and one delivery per recipient; returns their docIds.
        ``forward_to``: the recipients outside this axis, for whom it is queued for the upstream.

        Raises sqlite3.IntegrityError when another request recorded the same dedup key first.
        """
        now = time.time()
        doc_ids = [str(uuid.uuid4()) for _ in document.recipients]
        with transaction(self.connection) as db:
            insert_document(db, sender_doc_id, document, now)
            db.executemany(
                "INSERT INTO deliveries (doc_id, sender_doc_id, to_code, message_type, state, available_at,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (doc_id, sender_doc_id, to, document.message_type, DeliveryState.PENDING, now, now, now)
                    for doc_id, to in zip(doc_ids, document.recipients, strict=True)
                ],
            )
            if forward_to:
                db.execute(
                    "INSERT INTO forwards (sender_doc_id, state, to_codes, attempts, next_attempt_at, created_at)"
                    " VALUES (?, 'queued', ?, 0, ?, ?)",
                    (sender_doc_id, json.dumps(list(forward_to)), now, now),
                )
        return doc_ids

    def remove_orphan_files(self) -> int:
        """Delete document files no row refers to (a crash between write and commit), and stale uploads."""
        known = {row["file"] for row in self.connection.execute("SELECT file FROM documents")}
        removed = 0
        for path in self.docs_dir.iterdir():
            if path.name not in known:
                path.unlink(missing_ok=True)
                removed += 1
        for path in self.incoming_dir.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    # --- deliveries -----------------------------------------------------------------------------

    _DELIVERY = (
        "SELECT d.doc_id, d.sender_doc_id, d.to_code, doc.from_code, d.message_type, d.state, d.created_at,"
        " d.updated_at, d.fetched_at, d.done_at, doc.file, doc.size, doc.title, doc.notation, doc.system_id"
        " FROM deliveries d JOIN documents doc ON doc.sender_doc_id = d.sender_doc_id"
    )

    def listable(self, to_codes: Iterable[str], message_type: MessageType, limit: int) -> list[Delivery]:
        where, values = _listable(to_codes, message_type, "d.")
        if not values:
            return []
        rows = self.connection.execute(
            f"{self._DELIVERY} WHERE {where} ORDER BY d.created_at, d.doc_id LIMIT ?",
            (*values, limit),
        )
        return [Delivery.from_row(row) for row in rows]

    def has_unfetched(self, to_codes: Iterable[str], message_type: MessageType) -> bool:
        """Whether something listable for ``to_codes`` was never fetched (what a long-poll waits for)."""
        where, values = _listable(to_codes, message_type)
        if not values:
            return False
        sql = f"SELECT 1 FROM deliveries WHERE {where} AND fetched_at IS NULL LIMIT 1"  # noqa: S608
        return self.connection.execute(sql, values).fetchone() is not None

    def count_listable(self, to_codes: Iterable[str], message_type: MessageType) -> int:
        where, values = _listable(to_codes, message_type)
        if not values:
            return 0
        sql = f"SELECT count(*) FROM deliveries WHERE {where}"  # noqa: S608
        return int(self.connection.execute(sql, values).fetchone()[0])

    def delivery_for(self, doc_id: str, to_codes: frozenset[str]) -> Delivery | None:
        """A delivery, only if it is addressed to one of ``to_codes`` (isolation)."""
        row = self.connection.execute(f"{self._DELIVERY} WHERE d.doc_id = ?", (doc_id,)).fetchone()
        if row is None or row["to_code"] not in to_codes:
            return None
        return Delivery.from_row(row)

    def mark_fetched(self, doc_ids: Sequence[str]) -> None:
        now = time.time()
        with transaction(self.bookkeeping, durable=False) as db:  # one commit for a list's many
            db.executemany(
                "UPDATE deliveries SET fetched_at = coalesce(fetched_at, ?), updated_at = ? WHERE doc_id = ?",
                [(now, now, doc_id) for doc_id in doc_ids],
            )

    def set_state(self, doc_ids: Sequence[str], state: DeliveryState, retry_after: float) -> None:
        now = time.time()
        available = now + retry_after if state is DeliveryState.FAIL else now
        done = state is DeliveryState.DONE
        # not durable: an acknowledgement lost in a power failure is listed again and repeated
        with transaction(self.bookkeeping, durable=False) as db:
            db.executemany(
                "UPDATE deliveries SET state = ?, available_at = ?, updated_at = ?,"
                " done_at = CASE WHEN ? THEN coalesce(done_at, ?) ELSE done_at END WHERE doc_id = ?",
                [(state, available, now, done, now, doc_id) for doc_id in doc_ids],
            )

    def sent_by(
        self, system_id: str, message_type: MessageType | None, sender_doc_id: str | None, limit: int
    ) -> list[Delivery]:
        query = f"{self._DELIVERY} WHERE doc.system_id = ?"
        args: list[object] = [system_id]
        if message_type:
            query += " AND d.message_type = ?"
            args.append(message_type)
        if sender_doc_id:
            query += " AND d.sender_doc_id = ?"
            args.append(sender_doc_id)
        query += " ORDER BY d.created_at DESC, d.to_code LIMIT ?"
        args.append(limit)
        return [Delivery.from_row(row) for row in self.connection.execute(query, args)]

    def document_file(self, delivery: Delivery) -> Path:
        return self.docs_dir / delivery.file


def _agency(row: sqlite3.Row) -> Agency:
    return Agency(
        code=row["code"],
        name=row["name"],
        mail=row["mail"],
        system_id=row["system_id"],
        locked=bool(row["locked"]),
        source=row["source"],
        parent=row["parent"],
    )


def _listable(to_codes: Iterable[str], message_type: MessageType, table: str = "") -> tuple[str, tuple[Any, ...]]:
    """What a system may list: not done, due, of this type, for one of its agencies; as a WHERE
    clause (columns of ``table``, e.g. "d.") with its values, which are empty without agencies."""
    codes = sorted(set(to_codes))
    if not codes:
        return "", ()
    marks = ",".join("?" * len(codes))
    t = table
    # 'done' written out, not bound: only then can SQLite use the partial index deliveries_pending
    done = DeliveryState.DONE.value
    where = f"{t}to_code IN ({marks}) AND {t}message_type = ? AND {t}state != '{done}' AND {t}available_at <= ?"
    return where, (*codes, message_type, time.time())


def insert_document(db: sqlite3.Connection, sender_doc_id: str, document: NewDocument, now: float) -> None:
    """The documents row of an accepted message, inside the caller's transaction."""
    db.execute(
        "INSERT INTO documents (sender_doc_id, message_type, system_id, from_code, dedup_key, document_id,"
        " title, notation, status_code, file, sha256, size, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sender_doc_id,
            document.message_type,
            document.system_id,
            document.from_code,
            document.dedup_key,
            document.document_id,
            document.title,
            document.notation,
            document.status_code,
            f"{sender_doc_id}.edxml",
            document.sha256,
            document.size,
            now,
        ),
    )
