"""Gateways long-poll an axis that announces it, and fall back to plain polling otherwise."""

from __future__ import annotations

import time

from gateway.axis.store import AxisStore
from tests.e2e.province import build_province, free_port, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def list_calls(province) -> int:
    """getReceivedEdocList calls the axis has seen (its replay memory keeps every one)."""
    store = AxisStore(province.axis.folder / "data")
    try:
        return store.requests_remembered("getReceivedEdocList")
    finally:
        store.close()


def exchange_one(province, name: str) -> None:
    before = len(province.agencies[PROVINCE].receipts())
    province.drop_job(PROVINCE, name, {"to": [DEPARTMENT], "subject": f"Văn bản {name}"}, {})
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == before + 1, f"the 01 for {name}")


def test_idle_gateways_wait_at_the_axis_instead_of_asking_again_and_again(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])  # the test timing polls every 0.2 s
    try:
        for code in province.agencies:
            province.start(code)
        exchange_one(province, "first")
        before = list_calls(province)
        time.sleep(4.0)
        idle_calls = list_calls(province) - before
        # plain polling would be 2 gateways × 2 kinds × 20 = 80 calls in 4 s
        assert idle_calls <= 8, f"{idle_calls} list calls in 4 s of silence"
        exchange_one(province, "second")
    finally:
        province.stop_all()


def test_an_axis_without_long_poll_gets_plain_polls(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], axis_port=free_port())
    try:
        province.restart_axis("long_poll = false")
        for code in province.agencies:
            province.start(code)
        exchange_one(province, "plain")
        before = list_calls(province)
        time.sleep(2.0)
        assert list_calls(province) - before >= 10, "no plain polling"
        assert "worker_error" not in province.agencies[DEPARTMENT].service.event_names()
        assert "poll_refused" not in province.agencies[DEPARTMENT].service.event_names()
    finally:
        province.stop_all()


def test_an_entry_still_settling_is_taken_when_it_has_settled_not_at_the_next_tick(tmp_path):
    """Intake runs once a minute here: an entry it found still being written (settle 2 s) is
    taken when it has settled, by a wake-up intake sets for that moment."""
    from gateway.workspace import QUICK_TIMING

    timing = QUICK_TIMING.replace("intake = 0.2", "intake = 60.0").replace(
        "settle_seconds = 0.3", "settle_seconds = 2.0"
    )
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], timing=timing)
    try:
        province.start(DEPARTMENT)
        # dropped before the gateway starts: its first intake run (at start) finds it too fresh
        province.drop_job(PROVINCE, "settling", {"to": [DEPARTMENT], "subject": "Văn bản chờ ổn định"}, {})
        sender = province.start(PROVINCE)
        wait_until(lambda: len(sender.receipts()) == 1, "the 01 well before the next intake tick", timeout=30)
        assert "worker_error" not in sender.service.event_names()
    finally:
        province.stop_all()


def test_an_entry_stamped_ahead_of_our_clock_settles_by_being_seen_unchanged(tmp_path):
    """A file server whose clock runs an hour ahead stamps the entry in our future: it is taken
    once seen unchanged for settle_seconds, not when our clock reaches its mtime."""
    import os

    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        for code in province.agencies:
            province.start(code)
        outbox = province.agency(PROVINCE).outbox
        hidden = outbox / ".ahead"
        hidden.mkdir(parents=True)
        (hidden / "document.json").write_text(
            '{"to": ["000.00.11.H58"], "subject": "Văn bản từ máy chủ tệp lệch giờ"}', encoding="utf-8"
        )
        ahead = time.time() + 3600
        for path in (hidden / "document.json", hidden):
            os.utime(path, (ahead, ahead))
        hidden.rename(outbox / "ahead")
        os.utime(outbox / "ahead", (ahead, ahead))
        sender = province.agencies[PROVINCE]
        wait_until(lambda: len(sender.receipts()) == 1, "the 01 of an entry stamped an hour ahead", timeout=20)
    finally:
        province.stop_all()


def test_hundreds_of_entries_stamped_ahead_of_our_clock_are_all_taken(tmp_path):
    """More entries than intake takes in one run, all in our future: each settles by sight
    and is taken (here refused: they are not edXML), none waits for our clock."""
    import os

    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        province.start(PROVINCE)
        outbox = province.agency(PROVINCE).outbox
        ahead = time.time() + 3600
        for n in range(260):
            path = outbox / f"ahead-{n:03d}.edxml"
            path.write_bytes(b"<not-edxml/>")
            os.utime(path, (ahead, ahead))
        failed = outbox / "failed"
        wait_until(lambda: len(list(failed.glob("*.error.txt"))) == 260, "all 260 entries taken", timeout=60)
    finally:
        province.stop_all()
