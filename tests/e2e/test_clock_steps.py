"""The wall clock steps (a virtual machine resumed after days, NTP correcting a wrong clock):
the gateways notice, run their workers at once, and go on exchanging as before."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from gateway.daemon.clock import SteadyInterval
from tests.e2e.province import build_province, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def test_after_a_forward_step_the_next_tick_is_counted_from_now_not_walked_to():
    trigger = SteadyInterval(seconds=0.2, timezone=UTC)
    now = datetime.now(UTC)
    last_run = now - timedelta(days=7)
    following = trigger.get_next_fire_time(last_run, now)
    assert following is not None
    assert now <= following <= now + timedelta(seconds=0.2)
    # an ordinary tick is still the last run plus the interval
    assert trigger.get_next_fire_time(now, now) == now + timedelta(seconds=0.2)


def _document_times(database) -> list[str]:
    db = sqlite3.connect(database)
    try:
        rows = db.execute("SELECT document_time FROM outgoing WHERE kind = 'edoc' ORDER BY created_at")
        return [row[0] for row in rows]
    finally:
        db.close()


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_a_week_stepped_forward_is_noticed_and_the_exchange_goes_on(tmp_path, monkeypatch):
    from bench.replay.clock import ShiftedClock

    clock = ShiftedClock.build(tmp_path / "clock")
    for name, value in clock.env.items():  # the axis and both gateways read the shifted clock
        monkeypatch.setenv(name, value)
    province = build_province(tmp_path / "province", [PROVINCE, DEPARTMENT])
    try:
        for code in province.agencies:
            province.start(code)
        sender = province.agencies[PROVINCE]
        province.drop_job(PROVINCE, "before", {"to": [DEPARTMENT], "subject": "Trước khi đồng hồ nhảy"}, {})
        wait_until(lambda: len(sender.receipts()) == 1, "the 01 before the step")
        clock.set(datetime.now(UTC) + timedelta(days=7))
        for agency in province.agencies.values():
            agency.service.wait_for(lambda e: e.get("event") == "clock_stepped", f"{agency.code} to notice the step")
        province.drop_job(PROVINCE, "after", {"to": [DEPARTMENT], "subject": "Sau khi đồng hồ nhảy"}, {})
        wait_until(lambda: len(sender.receipts()) == 2, "the 01 after the step", timeout=30)
        before, after = (datetime.fromisoformat(t) for t in _document_times(sender.database))
        assert timedelta(days=6, hours=23) < after - before < timedelta(days=7, hours=1)
        for agency in province.agencies.values():
            assert "worker_error" not in agency.service.event_names()
    finally:
        province.stop_all()
