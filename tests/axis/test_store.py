"""The axis's store: bookkeeping that must stay cheap however long the axis runs."""

from __future__ import annotations

import time

from gateway.axis.store import AxisStore


def test_expired_request_signatures_are_forgotten_a_batch_at_a_time(tmp_path):
    store = AxisStore(tmp_path)
    try:
        for n in range(5000):
            assert store.remember_request("list", f"signature-{n}", keep_seconds=-1)  # expired at once
        assert store.remember_request("list", "still-fresh", keep_seconds=600)
        assert [store.forget_expired_requests(batch=2000) for _ in range(4)] == [2000, 2000, 1000, 0]
        assert not store.remember_request("list", "still-fresh", keep_seconds=600)  # a replay, still known
        assert store.remember_request("list", "signature-7", keep_seconds=600)  # forgotten, so new again
    finally:
        store.close()


def test_the_wal_is_copied_into_the_database_by_checkpoint_not_by_commits(tmp_path):
    """Commits never checkpoint (that would fsync on the event loop); checkpoint() copies it all."""
    store = AxisStore(tmp_path)
    try:
        for n in range(3000):  # far more pages than SQLite's automatic checkpoint would allow
            store.remember_request("list", f"signature-{n}-{time.time()}", keep_seconds=600)
        wal = tmp_path / "axis.sqlite3-wal"
        grown = wal.stat().st_size
        assert grown > 3000 * 4096  # no commit checkpointed on its own
        frames, copied = store.checkpoint()
        assert frames > 3000 and copied == frames  # SQLite alone would have stopped at 1,000
        store.remember_request("list", "after", keep_seconds=600)
        assert wal.stat().st_size == grown  # reused from its start, not grown further
    finally:
        store.close()


def test_the_national_directory_is_written_only_when_it_changed(tmp_path):
    """A provincial axis reads it every few seconds while gateways ask; thousands of rows are
    rewritten only when something in them changed."""
    from gateway.axis.bridge_store import BridgeStore, UpstreamAgency

    store = AxisStore(tmp_path)
    try:
        tables = BridgeStore(store)
        national = [UpstreamAgency(f"000.00.00.H{n:02d}", f"UBND tỉnh {n}", "", "") for n in range(10, 70)]
        assert tables.upstream_knows("000.00.00.H57") is None  # never read
        assert tables.replace_upstream_agencies(national)
        assert not tables.replace_upstream_agencies(list(reversed(national)))  # the same, in another order
        renamed = [*national[:-1], UpstreamAgency(national[-1].code, "UBND tỉnh mới", "", "")]
        assert tables.replace_upstream_agencies(renamed)
        assert [a.name for a in tables.upstream_agencies()][-1] == "UBND tỉnh mới"
        assert tables.upstream_knows("000.00.00.H57") and tables.upstream_knows("000.00.00.H99") is False
    finally:
        store.close()
