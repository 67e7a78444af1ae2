"""The bridge's durable state, beside the axis store: what is forwarded upstream, what came
down from it, and the national directory as last read.

Forwarding: a document accepted with recipients outside this axis has a `forwards` row,
committed with it (AxisStore.record_document); the bridge sends it upstream, and a resend
after a crash carries the same file (the upstream keys on sender and DocumentId, and answers
with the same DocId). Inbound: a message fetched from the upstream is committed here (its
document, its delivery to the local recipient, its `inbound` row) in one transaction before
the upstream is told `done`; listed again, it is acknowledged again, never delivered again.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.axis.records import NewDocument
from gateway.axis.store import AxisStore, insert_document
from gateway.sqlite import relaxed, transaction
from gateway.vxp.vocabulary import DeliveryState, MessageType

# How long after a forward was sent its outside recipients reported failed are still asked about.
FAILED_WATCH_SECONDS = 7 * 24 * 3600
FAILED_RECHECK_SECONDS = 3600.0  # meanwhile, how much later than a pending one it is asked again
DIRECTORY_DIGEST = "directory_digest"  # bridge_meta: what the kept national directory holds


@dataclass(frozen=True)
class Forward:
    """A document of ours on its way to the upstream axis, for its recipients outside."""

    sender_doc_id: str
    message_type: MessageType
    from_code: str
    file: str
    to_codes: tuple[str, ...]
    attempts: int
    upstream_doc_id: str | None


@dataclass(frozen=True)
class UpstreamAgency:
    code: str
    name: str
    pid: str
    mail: str


class BridgeStore:
    def __init__(self, store: AxisStore) -> None:
        self.store = store
        self.db = store.connection
        self.directory_version = 0  # counted up when the national directory kept changes

    # --- forwarding -------------------------------------------------------------------------

    def due_forwards(self, limit: int) -> list[Forward]:
        rows = self.db.execute(
            "SELECT f.sender_doc_id, doc.message_type, doc.from_code, doc.file, f.to_codes, f.attempts,"
            " f.upstream_doc_id FROM forwards f JOIN documents doc ON doc.sender_doc_id = f.sender_doc_id"
            " WHERE f.state = 'queued' AND f.next_attempt_at <= ? ORDER BY f.next_attempt_at LIMIT ?",
            (time.time(), limit),
        )
        return [
            Forward(
                row["sender_doc_id"],
                MessageType(row["message_type"]),
                row["from_code"],
                row["file"],
                tuple(json.loads(row["to_codes"])),
                row["attempts"],
                row["upstream_doc_id"],
            )
            for row in rows
        ]

    def forwarded(self, sent: Sequence[tuple[str, str]]) -> None:
        """Forwards the upstream took, each (sender_doc_id, the DocId it gave), in one transaction."""
        now = time.time()
        with transaction(self.db) as db:
            db.executemany(
                "UPDATE forwards SET state = 'sent', upstream_doc_id = ?, sent_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE sender_doc_id = ?",
                [(upstream_doc_id, now, sender_doc_id) for sender_doc_id, upstream_doc_id in sent],
            )

    def postpone_forward(self, sender_doc_id: str, delay: float, error: str) -> None:
        with transaction(self.db) as db:
            db.execute(
                "UPDATE forwards SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE sender_doc_id = ?",
                (time.time() + delay, error, sender_doc_id),
            )

    def forward_failed(self, forward: Forward, error: str) -> None:
        """The upstream refused it for good: its outside recipients' deliveries say `fail`."""
        now = time.time()
        marks = ",".join("?" * len(forward.to_codes))
        with transaction(self.db) as db:
            db.execute(
                "UPDATE forwards SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE sender_doc_id = ?",
                (error, forward.sender_doc_id),
            )
            db.execute(
                f"UPDATE deliveries SET state = ?, updated_at = ? WHERE sender_doc_id = ?"  # noqa: S608
                f" AND to_code IN ({marks})",
                (DeliveryState.FAIL, now, forward.sender_doc_id, *forward.to_codes),
            )

    def to_check(self, limit: int, every: float) -> list[tuple[str, str, tuple[str, ...]]]:
        """(sender docId, upstream DocId, outside recipients) of forwarded documents not yet
        settled (see outside_states): those never asked about, and those asked about longest
        ago, ``every`` seconds ago or more.

        Half the places (rounded up; at ``limit`` 1 the one place) go to forwards asked about
        before when any are due, the rest (and any they leave) to the never asked: while more
        new forwards arrive than one check asks about, the ones asked before must still be
        asked again, or their outside recipients' states would never reach their senders.
        Each part is a range of forwards_to_check (the 'sent' forwards by when they were last
        asked about): neither reads the forwards asked about lately, however many wait upstream.
        """
        picked = "SELECT f.sender_doc_id, f.upstream_doc_id, f.to_codes FROM forwards f WHERE f.state = 'sent'"
        never = self.db.execute(
            f"{picked} AND f.checked_at IS NULL LIMIT ?",
            (limit,),
        ).fetchall()
        again_places = max(limit - len(never), limit - limit // 2)
        again = self.db.execute(
            f"{picked} AND f.checked_at <= ? ORDER BY f.checked_at LIMIT ?",
            (time.time() - every, again_places),
        ).fetchall()
        never = never[: limit - len(again)]
        return [(r["sender_doc_id"], r["upstream_doc_id"], tuple(json.loads(r["to_codes"]))) for r in never + again]

    def outside_states(self, sender_doc_id: str, states: dict[str, DeliveryState]) -> None:
        """What the upstream says of each outside recipient, as their deliveries here; the
        forward settles (is not asked about again) once each is done, or once each is done or
        failed and it was sent FAILED_WATCH_SECONDS ago: in VXP a failed delivery is listed
        to its recipient again later, and may still become done."""
        now = time.time()
        with relaxed(self.db):
            for code, state in states.items():
                self.db.execute(
                    "UPDATE deliveries SET state = ?, updated_at = ?,"
                    " done_at = CASE WHEN ? THEN coalesce(done_at, ?) ELSE done_at END"
                    " WHERE sender_doc_id = ? AND to_code = ? AND state != 'done'",  # done stays done
                    (state, now, state is DeliveryState.DONE, now, sender_doc_id, code),
                )
            reported = self.db.execute(
                "SELECT d.state, f.sent_at FROM forwards f JOIN deliveries d ON d.sender_doc_id = f.sender_doc_id"
                " WHERE f.sender_doc_id = ? AND d.to_code IN (SELECT value FROM json_each(f.to_codes))",
                (sender_doc_id,),
            ).fetchall()
            outside = {row[0] for row in reported}
            # waiting only on failed recipients: asked again in an hour, not every round (a week
            # of such forwards must not push the pending ones' questions back), then settled
            only_failed = outside <= {DeliveryState.DONE, DeliveryState.FAIL}
            watched_long = only_failed and (reported[0][1] or 0) <= now - FAILED_WATCH_SECONDS
            settled = outside <= {DeliveryState.DONE} or watched_long
            self.db.execute(
                "UPDATE forwards SET checked_at = ?, state = CASE WHEN ? THEN 'settled' ELSE state END"
                " WHERE sender_doc_id = ? AND state = 'sent'",
                (now + (FAILED_RECHECK_SECONDS if only_failed else 0.0), settled, sender_doc_id),
            )

    # --- inbound ----------------------------------------------------------------------------

    def inbound(self, upstream_doc_id: str) -> tuple[str, bool] | None:
        """(local sender docId, acknowledged upstream) of a message already committed here."""
        row = self.db.execute(
            "SELECT sender_doc_id, acked FROM inbound WHERE upstream_doc_id = ?", (upstream_doc_id,)
        ).fetchone()
        return None if row is None else (row["sender_doc_id"], bool(row["acked"]))

    def record_inbound(
        self, upstream_doc_id: str, document: NewDocument, to_code: str, sender_doc_id: str, *, new: bool
    ) -> tuple[str, bool]:
        """Commit a message fetched from the upstream for local agency ``to_code``, in one
        transaction with its inbound row: a ``new`` document (its file already written as
        ``sender_doc_id``), or one more recipient of a document known here under that id
        (another recipient's copy). Returns (local sender docId, whether a delivery was added).

        Raises sqlite3.IntegrityError when a new document's dedup key was taken meanwhile."""
        now = time.time()
        with transaction(self.db) as db:
            if new:
                insert_document(db, sender_doc_id, document, now)
            added = db.execute(
                "INSERT OR IGNORE INTO deliveries (doc_id, sender_doc_id, to_code, message_type, state,"
                " available_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), sender_doc_id, to_code, document.message_type, DeliveryState.PENDING, now, now,
                 now),
            ).rowcount  # fmt: skip
            db.execute(
                "INSERT INTO inbound (upstream_doc_id, message_type, sender_doc_id, to_code, acked, received_at)"
                " VALUES (?, ?, ?, ?, 0, ?)",
                (upstream_doc_id, document.message_type, sender_doc_id, to_code, now),
            )
        return sender_doc_id, bool(added)

    def acknowledged(self, upstream_doc_id: str) -> None:
        with relaxed(self.db):  # lost in a power failure, it is listed and acknowledged again
            self.db.execute("UPDATE inbound SET acked = 1 WHERE upstream_doc_id = ?", (upstream_doc_id,))

    # --- the national directory and the bridge's own facts ----------------------------------

    def replace_upstream_agencies(self, agencies: list[UpstreamAgency]) -> bool:
        """Keep the national directory just read; False (nothing written) when it is the one kept.

        It is read every few seconds while gateways ask for the directory, and holds thousands
        of agencies: rewriting it each time would hold the event loop for nothing."""
        rows = sorted({(a.code, a.name, a.pid, a.mail) for a in agencies})
        digest = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()
        if self.meta(DIRECTORY_DIGEST) == digest:
            return False
        self.directory_version += 1
        with transaction(self.db) as db:
            db.execute("DELETE FROM upstream_agencies")
            db.executemany("INSERT OR REPLACE INTO upstream_agencies (code, name, pid, mail) VALUES (?, ?, ?, ?)", rows)
            db.execute(
                "INSERT INTO bridge_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (DIRECTORY_DIGEST, digest),
            )
        return True

    def upstream_agencies(self) -> list[UpstreamAgency]:
        rows = self.db.execute("SELECT code, name, pid, mail FROM upstream_agencies ORDER BY code")
        return [UpstreamAgency(r["code"], r["name"], r["pid"] or "", r["mail"] or "") for r in rows]

    def upstream_knows(self, code: str) -> bool | None:
        """Whether the national directory lists ``code``; None when it was never read."""
        if self.db.execute("SELECT 1 FROM upstream_agencies LIMIT 1").fetchone() is None:
            return None
        return self.db.execute("SELECT 1 FROM upstream_agencies WHERE code = ?", (code,)).fetchone() is not None

    def set_meta(self, key: str, value: str) -> None:
        with relaxed(self.db):
            self.db.execute(
                "INSERT INTO bridge_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM bridge_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]
