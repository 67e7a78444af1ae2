"""The axis's store: bookkeeping that must stay cheap however long the axis runs."""

from __future__ import annotations

import time

from gateway.axis.store import AxisStore
from tests.sqlsteps import counted_steps


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


def test_the_receipts_check_reads_only_forwards_with_an_outside_recipient_unsettled(tmp_path):
    """The bridge asks every few seconds which forwarded documents still have an outside
    recipient pending upstream. A forward whose outside recipients are all reported done (or
    done or failed, a week after it was sent) leaves 'sent' for 'settled' and is never read
    again; the rest come never-asked first, then longest unasked. SQLite's steps for the
    question stay the same as settled ones pile up."""
    import sqlite3

    from gateway.axis.bridge_store import FAILED_WATCH_SECONDS, BridgeStore
    from gateway.axis.records import NewDocument
    from gateway.vxp.vocabulary import DeliveryState, MessageType

    store = AxisStore(tmp_path)
    tables = BridgeStore(store)
    outside = ("000.00.00.G09", "000.00.00.G10")

    def forward(n: int) -> str:
        sender_doc_id = f"sender-{n}"
        document = NewDocument(
            MessageType.EDOC, "sys", "000.00.01.H58", f"key-{n}", f"d-{n}", "t", "1/UBND", "", "0" * 64, 10, outside
        )
        store.record_document(sender_doc_id, document, forward_to=outside)
        tables.forwarded([(sender_doc_id, f"upstream-{n}")])
        return sender_doc_id

    def steps() -> int:
        return counted_steps(store.connection, lambda: tables.to_check(20, every=60))[0]

    try:
        for n in range(3):
            forward(n)
        assert [checked[0] for checked in tables.to_check(20, every=60)] == ["sender-0", "sender-1", "sender-2"]
        # a failed recipient may still be delivered (VXP lists it again): asked about for a week
        tables.outside_states("sender-0", {outside[0]: DeliveryState.DONE, outside[1]: DeliveryState.FAIL})
        assert (
            store.connection.execute("SELECT state FROM forwards WHERE sender_doc_id = 'sender-0'").fetchone()[0]
            == "sent"
        )
        assert "sender-0" not in [checked[0] for checked in tables.to_check(20, every=0)]  # asked again in an hour
        store.connection.execute(
            "UPDATE forwards SET sent_at = sent_at - ? WHERE sender_doc_id = 'sender-0'", (FAILED_WATCH_SECONDS + 1,)
        )
        tables.outside_states("sender-0", {outside[1]: DeliveryState.FAIL})  # a week later: its last word
        tables.outside_states("sender-1", {outside[0]: DeliveryState.DONE})  # the other still pending
        tables.outside_states("sender-1", {outside[0]: DeliveryState.PROCESSING})  # done stays done
        assert (
            store.connection.execute(
                "SELECT state FROM deliveries WHERE sender_doc_id = 'sender-1' AND to_code = ?", (outside[0],)
            ).fetchone()[0]
            == "done"
        )
        states = dict(store.connection.execute("SELECT sender_doc_id, state FROM forwards").fetchall())
        assert states == {"sender-0": "settled", "sender-1": "sent", "sender-2": "sent"}
        assert [checked[0] for checked in tables.to_check(20, every=0)] == ["sender-2", "sender-1"]  # never asked first
        assert [checked[0] for checked in tables.to_check(20, every=60)] == ["sender-2"]  # sender-1 asked just now
        # More never-asked forwards than a check takes: sender-1 and sender-2, asked before and
        # due again, still get their half of the places, longest unasked first.
        tables.outside_states("sender-2", {})
        for n in range(1003, 1008):
            forward(n)
        picked = [checked[0] for checked in tables.to_check(4, every=0)]
        assert picked == ["sender-1003", "sender-1004", "sender-1", "sender-2"]
        assert [checked[0] for checked in tables.to_check(3, every=0)] == ["sender-1003", "sender-1", "sender-2"]
        for n in range(1003, 1008):  # what the new forwards' check found: all still pending
            tables.outside_states(f"sender-{n}", {})
        for n in range(3, 203):
            tables.outside_states(forward(n), dict.fromkeys(outside, DeliveryState.DONE))
        few = steps()
        for n in range(203, 1003):
            tables.outside_states(forward(n), dict.fromkeys(outside, DeliveryState.DONE))
        assert steps() <= few + 20, "settled forwards must not be read again"
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "axis.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM forwards WHERE state = 'settled'").fetchone()[0] == 1001
        assert db.execute("SELECT count(*) FROM forwards WHERE state = 'sent'").fetchone()[0] == 7


def test_an_axis_database_of_version_4_settles_its_forwards_once(tmp_path):
    import sqlite3

    from gateway.axis.bridge_store import BridgeStore
    from gateway.axis.records import NewDocument
    from gateway.vxp.vocabulary import DeliveryState, MessageType

    store = AxisStore(tmp_path)
    tables = BridgeStore(store)
    for n, state in enumerate((DeliveryState.DONE, DeliveryState.PENDING)):
        document = NewDocument(
            MessageType.EDOC, "sys", "000.00.01.H58", f"k-{n}", f"d-{n}", "t", "1/UBND", "", "0" * 64, 1, ("G09",)
        )
        store.record_document(f"s-{n}", document, forward_to=("G09",))
        tables.forwarded([(f"s-{n}", f"u-{n}")])
        store.connection.execute("UPDATE deliveries SET state = ? WHERE sender_doc_id = ?", (state, f"s-{n}"))
    store.close()
    with sqlite3.connect(tmp_path / "axis.sqlite3") as db:  # as version 4 left it
        db.execute("DROP INDEX forwards_to_check")
        db.execute("PRAGMA user_version = 4")
    store = AxisStore(tmp_path)
    try:
        states = dict(store.connection.execute("SELECT sender_doc_id, state FROM forwards").fetchall())
        assert states == {"s-0": "settled", "s-1": "sent"}
        assert [checked[0] for checked in BridgeStore(store).to_check(20, every=60)] == ["s-1"]
    finally:
        store.close()
