"""The gateway's SQLite store: the running number kept with the rows it counts."""

from __future__ import annotations

from pathlib import Path

from gateway.sqlite import transaction
from gateway.store import DOCUMENTS_QUEUED, SCHEMA_VERSION, GatewayStore, NewOutgoing
from gateway.vxp.vocabulary import MessageType


def queue(store: GatewayStore, n: int, kind: MessageType = MessageType.EDOC) -> None:
    message = NewOutgoing(kind, f"000.00.00.H58,2026/11/30,{n}/UBND", "Văn bản", ("000.00.11.H58",))
    queued = store.outgoing.queue(f"{kind}-{n}", message, source_key=f"test:{kind}:{n}", deadline_seconds=3600)
    assert queued is not None


def test_the_running_number_counts_documents_not_statuses_and_survives_a_restart(tmp_path: Path):
    store = GatewayStore(tmp_path)
    assert store.outgoing.documents_queued() == 0
    for n in range(3):
        queue(store, n)
    queue(store, 9, kind=MessageType.STATUS)
    assert store.outgoing.documents_queued() == 3
    store.close()
    reopened = GatewayStore(tmp_path)
    queue(reopened, 3)
    assert reopened.outgoing.documents_queued() == 4


def test_a_database_without_the_counter_counts_its_rows_once(tmp_path: Path):
    """A database from before the counter, or one whose counter was never read: the rows are
    counted on first use, and counted up from there."""
    store = GatewayStore(tmp_path)
    for n in range(5):
        queue(store, n)  # nobody asked yet: there is no counter to count up
    assert store.meta(DOCUMENTS_QUEUED) is None
    assert store.outgoing.documents_queued() == 5
    queue(store, 5)
    assert store.meta(DOCUMENTS_QUEUED) == "6"
    with transaction(store.db) as db:
        db.execute("DELETE FROM meta WHERE key = ?", (DOCUMENTS_QUEUED,))
    assert store.outgoing.documents_queued() == 6


def plan(store: GatewayStore, query: str) -> str:
    return " ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {query}"))


def test_what_retry_looks_for_is_indexed_apart_from_the_history_also_after_an_upgrade(tmp_path: Path):
    """retry asks every few seconds for unacknowledged messages and overdue ones; with a year
    of history a scan of it cost 150 ms a run. Both questions use their own partial index,
    in a new database and in one upgraded from version 2."""
    import sqlite3

    store = GatewayStore(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:  # as version 2 left it
        db.execute("DROP INDEX incoming_unacknowledged")
        db.execute("DROP INDEX outgoing_queued_deadline")
        db.execute("PRAGMA user_version = 2")
    store = GatewayStore(tmp_path)
    unacknowledged = plan(
        store, "SELECT * FROM incoming WHERE state != 'listed' AND acked = 0 AND next_attempt_at <= 1"
    )
    overdue = plan(store, "SELECT * FROM outgoing WHERE state = 'queued' AND deadline_at < 1")
    assert "incoming_unacknowledged" in unacknowledged, unacknowledged
    assert "outgoing_queued_deadline" in overdue, overdue
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.incoming.unacknowledged(10) == [] and store.outgoing.overdue() == []


def test_rows_from_before_hosted_agencies_belong_to_the_installations_own_agency(tmp_path: Path):
    """Version 7 records which hosted agency sent and received each message; a database of
    version 6 has rows without: the installation's own agency claims them, once, and its
    running number goes on from where it was."""
    import sqlite3

    store = GatewayStore(tmp_path)
    for n in range(3):
        queue(store, n)
    store.incoming.note_listed("axis-1", MessageType.EDOC, "000.00.11.H58")
    assert store.outgoing.documents_queued() == 3
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:  # as version 6 left it
        db.execute("UPDATE outgoing SET from_code = NULL")
        db.execute("UPDATE incoming SET to_code = NULL")
        db.execute("DROP INDEX incoming_once_per_agency")
        db.execute("CREATE UNIQUE INDEX incoming_once ON incoming(from_code, document_id) WHERE state = 'delivered'")
        db.execute("PRAGMA user_version = 6")
    store = GatewayStore(tmp_path)
    indexes = {row[1] for row in store.db.execute("PRAGMA index_list(incoming)")}
    assert "incoming_once_per_agency" in indexes and "incoming_once" not in indexes
    store.claim("000.00.00.H58")
    assert {item.from_code for item in store.reports.outgoing_for_kind(MessageType.EDOC)} == {"000.00.00.H58"}
    assert store.incoming.get("axis-1").to_code == "000.00.00.H58"
    assert store.outgoing.documents_queued("000.00.00.H58") == 3
    store.claim("000.00.31.H58")  # said once: a later claim changes nothing
    assert store.incoming.get("axis-1").to_code == "000.00.00.H58"


def test_a_database_of_version_8_gains_the_answering_record_and_keeps_its_rows(tmp_path: Path):
    """Version 9 keeps what answering a delivered document needs; a version 8 database has no
    such column: it is added, NULL in the rows it had (commands.signed_answer then reads the
    envelope), and a row read from it still reads."""
    import sqlite3

    store = GatewayStore(tmp_path)
    store.incoming.note_listed("axis-1", MessageType.EDOC, "000.00.11.H58")
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:  # as version 8 left it
        db.execute("ALTER TABLE incoming DROP COLUMN answering")
        db.execute("PRAGMA user_version = 8")
    store = GatewayStore(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "answering" in {row[1] for row in store.db.execute("PRAGMA table_info(incoming)")}
    assert store.incoming.get("axis-1").answering is None
    store.close()


def test_a_database_of_version_9_gains_the_kept_bodies_and_its_files_still_read(tmp_path: Path):
    """Version 10 keeps a small outgoing message's signed bytes in the database; a version 9
    database named a file for every message: the table is added, and its rows' files read."""
    import sqlite3

    store = GatewayStore(tmp_path)
    message = NewOutgoing(kind=MessageType.STATUS, document_id="d-1", subject="01", to_codes=("000.00.11.H58",))
    store.outgoing.queue("old-1", message, source_key="test:old", deadline_seconds=60)
    store.outgoing.path_for("old-1").write_bytes(b"<signed/>")
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:  # as version 9 left it
        db.execute("DROP TABLE outgoing_body")
        db.execute("PRAGMA user_version = 9")
    store = GatewayStore(tmp_path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (old,) = store.outgoing.for_document("d-1")
    assert old.file == "old-1.edxml" and store.outgoing.signed(old) == b"<signed/>"
    store.outgoing.queue("new-1", message, source_key="test:new", deadline_seconds=60, body=b"<kept/>")
    new = store.outgoing.by_source("test:new")
    assert new is not None and new.file == "" and store.outgoing.signed(new) == b"<kept/>"
    assert store.outgoing.known_files() == {"old-1.edxml"}
    store.close()
