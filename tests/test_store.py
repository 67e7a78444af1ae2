"""The gateway's SQLite store: the running number kept with the rows it counts."""

from __future__ import annotations

from pathlib import Path

from gateway.sqlite import transaction
from gateway.store import DOCUMENTS_QUEUED, GatewayStore


def queue(store: GatewayStore, n: int, kind: str = "edoc") -> None:
    with transaction(store.db) as db:
        store.add_outgoing(
            f"{kind}-{n}",
            kind=kind,
            document_id=f"000.00.00.H58,2026/11/30,{n}/UBND",
            source_key=f"test:{kind}:{n}",
            subject="Văn bản",
            to_codes=["000.00.11.H58"],
            deadline_seconds=3600,
            connection=db,
        )


def test_the_running_number_counts_documents_not_statuses_and_survives_a_restart(tmp_path: Path):
    store = GatewayStore(tmp_path)
    assert store.documents_queued() == 0
    for n in range(3):
        queue(store, n)
    queue(store, 9, kind="status")
    assert store.documents_queued() == 3
    store.close()
    reopened = GatewayStore(tmp_path)
    queue(reopened, 3)
    assert reopened.documents_queued() == 4


def test_a_database_without_the_counter_counts_its_rows_once(tmp_path: Path):
    """A database from before the counter, or one whose counter was never read: the rows are
    counted on first use, and counted up from there."""
    store = GatewayStore(tmp_path)
    for n in range(5):
        queue(store, n)  # nobody asked yet: there is no counter to count up
    assert store.meta(DOCUMENTS_QUEUED) is None
    assert store.documents_queued() == 5
    queue(store, 5)
    assert store.meta(DOCUMENTS_QUEUED) == "6"
    with transaction(store.db) as db:
        db.execute("DELETE FROM meta WHERE key = ?", (DOCUMENTS_QUEUED,))
    assert store.documents_queued() == 6
