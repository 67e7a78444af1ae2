"""The national axis away: traffic inside the province carries on, what goes out waits and
goes the moment it is back, the bridge asks a dead upstream at a bounded rate, and says so."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from gateway.axis_client import AxisClient
from tests.axis.country import DEPARTMENT, MINISTRY, PROVINCE, build_country
from tests.e2e.province import free_port, wait_until


@pytest.fixture
def country(tmp_path):
    built = build_country(tmp_path, national_port=free_port(), provincial_port=free_port())
    yield built
    built.stop_all()


def job(recipients: list[str], n: int) -> dict:
    return {"to": recipients, "subject": f"Văn bản số {n}", "code_number": str(n), "code_notation": "UBND"}


async def agencies(url: str, system_id: str, secret: str) -> list[dict]:
    async with AxisClient(url, system_id, secret, timeout=30) as client:
        return await client.agencies()


def bridge(country) -> tuple[int, dict]:
    result = country.run("bridge", "--config", str(country.root / "provincial" / "axis.toml"), "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize(
    "outage_seconds", [pytest.param(6, id="6-s"), pytest.param(120, id="2-minutes", marks=pytest.mark.slow)]
)
def test_the_national_axis_away(country, outage_seconds):
    country.start_national()
    country.start_provincial()
    country.provincial.service.wait_for(lambda e: e.get("event") == "registered_upstream", "the registration")
    for code in (PROVINCE, DEPARTMENT, MINISTRY):
        country.start(code)
    province, department, ministry = (country.agencies[c] for c in (PROVINCE, DEPARTMENT, MINISTRY))
    status, report = wait_until(lambda: (b := bridge(country))[1].get("last_contact") and b, "a first contact")
    assert status == 0 and report["status"] == "OK", report

    country.axis.service.stop()
    went = time.monotonic()
    country.drop_job(PROVINCE, "inside", job([DEPARTMENT], 1), {"a.txt": b"x"})
    country.drop_job(PROVINCE, "outside", job([MINISTRY, DEPARTMENT], 2), {"b.txt": b"y"})
    wait_until(lambda: len(department.delivered()) == 2, "both documents inside the province, meanwhile")
    wait_until(lambda: len(province.receipts()) == 2, "the department's 01s, meanwhile")
    country.provincial.service.wait_for(lambda e: e.get("event") == "upstream_unreachable", "the outage said")
    # the directory is still answered, from what was last read of the national one
    secret = (country.agencies[PROVINCE].folder / "secret.txt").read_text().strip()
    for _ in range(10):
        listed = asyncio.run(agencies(country.provincial.url, f"sys-{PROVINCE}", secret))
        assert {MINISTRY, DEPARTMENT} <= {a["code"] for a in listed}
    _, report = wait_until(lambda: (b := bridge(country))[1]["forwards_queued"] == 1 and b, "the waiting forward")
    time.sleep(max(0.0, outage_seconds - (time.monotonic() - went)))

    country.start_national()
    back = country.provincial.service.wait_for(lambda e: e.get("event") == "upstream_reachable", "the return said")
    down = time.monotonic() - went
    # at most about two calls a second to a dead upstream (retry_max_seconds 1.0), however long it is away
    assert back["after_failures"] <= 3 * down, back
    wait_until(lambda: ministry.delivered(), "the document outside, once the upstream is back")
    wait_until(lambda: any(r[1] == MINISTRY for r in province.receipts()), "its 01")
    wait_until(lambda: bridge(country)[1]["forwards_queued"] == 0, "the queue emptied")
    assert len(ministry.delivered()) == 1
