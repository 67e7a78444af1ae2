"""The axis goes away in the middle of an exchange: gateways ask it at a bounded rate
meanwhile, and everything arrives once it is back."""

from __future__ import annotations

import time

import pytest

from tests.axis.running import start_axis
from tests.e2e.province import build_province, free_port, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


@pytest.mark.parametrize("outage", [pytest.param(8, id="8s"), pytest.param(120, id="120s", marks=pytest.mark.slow)])
def test_axis_down_mid_exchange(tmp_path, outage):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], axis_port=free_port())
    try:
        for code in province.agencies:
            province.start(code)
        jobs = 20
        for n in range(jobs // 2):
            province.drop_job(PROVINCE, f"before-{n}", {"to": [DEPARTMENT], "subject": f"Trước sự cố {n}"}, {})
        wait_until(lambda: len(province.agencies[DEPARTMENT].delivered()) == jobs // 2, "the first half")
        assert province.axis.service.stop() == 0
        down_at = time.monotonic()
        for n in range(jobs // 2):
            province.drop_job(PROVINCE, f"during-{n}", {"to": [DEPARTMENT], "subject": f"Trong sự cố {n}"}, {})
        time.sleep(outage)
        province.axis = start_axis(province.axis.folder, province.axis.config_path)
        # every gateway says when it lost the axis and when it found it again, with the failed calls
        back = {
            code: agency.service.wait_for(lambda e: e.get("event") == "axis_reachable", f"{code} to find the axis")
            for code, agency in province.agencies.items()
        }
        elapsed = time.monotonic() - down_at
        attempts = {code: event["after_failures"] for code, event in back.items()}
        for code, agency in province.agencies.items():
            names = agency.service.event_names()
            lines = names.count("axis_unreachable") + names.count("axis_still_unreachable")
            assert lines <= 2 + elapsed / 60, f"{code} wrote {lines} lines about one outage of {elapsed:.0f} s"
        wait_until(lambda: len(province.agencies[DEPARTMENT].delivered()) == jobs, "every document", timeout=60)
        wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == jobs, "every 01", timeout=60)
        print(f"axis down {elapsed:.0f} s: calls that found it down, per gateway: {attempts}")
        for code, count in attempts.items():
            # without the pause, five workers every 0.2 s would make about 25 calls a second
            assert 1 <= count <= 2 * elapsed + 5, f"{code} called the dead axis {count} times in {elapsed:.0f} s"
    finally:
        province.stop_all()
