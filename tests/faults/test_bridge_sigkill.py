"""SIGKILL the provincial axis, again and again, while documents cross its bridge both ways:
nothing lost, nothing delivered twice, every 01 back at its sender."""

from __future__ import annotations

import random
import time

import pytest

from tests.axis.country import MINISTRY, PROVINCE, build_country
from tests.e2e.province import free_port, wait_until


@pytest.fixture
def country(tmp_path):
    built = build_country(tmp_path, national_port=free_port(), provincial_port=free_port())
    yield built
    built.stop_all()


def job(recipient: str, n: int) -> dict:
    return {"to": [recipient], "subject": f"Văn bản số {n}", "code_number": str(n), "code_notation": "UBND"}


@pytest.mark.parametrize(
    ("documents", "seconds_of_kills"),
    [
        pytest.param(20, 8, id="bridge-20-each-way"),
        pytest.param(200, 45, id="bridge-200-each-way", marks=pytest.mark.slow),
    ],
)
def test_sigkill_loop_at_the_provincial_axis_while_it_forwards_both_ways(country, documents, seconds_of_kills):
    rng = random.Random(documents)
    country.start_national()
    country.start_provincial()
    country.provincial.service.wait_for(lambda e: e.get("event") == "registered_upstream", "the registration")
    for code in (PROVINCE, MINISTRY):
        country.start(code)
    province, ministry = country.agencies[PROVINCE], country.agencies[MINISTRY]
    for n in range(documents):
        country.drop_job(PROVINCE, f"up-{n:04d}", job(MINISTRY, n), {"a.txt": f"lên {n}".encode() * 40})
        country.drop_job(MINISTRY, f"down-{n:04d}", job(PROVINCE, n), {"b.txt": f"xuống {n}".encode() * 40})

    def arrived() -> bool:
        return (
            len(ministry.delivered()) >= documents
            and len(province.delivered()) >= documents
            and len(province.receipts()) >= documents
            and len(ministry.receipts()) >= documents
        )

    kills = 0
    deadline = time.monotonic() + seconds_of_kills
    while kills < 3 or (time.monotonic() < deadline and not arrived()):  # three at least, however fast
        time.sleep(rng.uniform(0.2, 0.8))
        country.provincial.service.kill()
        kills += 1
        country.start_provincial()
    wait_until(arrived, "every document and every 01, both ways", timeout=180)
    time.sleep(1.5)  # anything duplicated would show up now
    for agency in (province, ministry):
        delivered = agency.delivered()
        assert len(delivered) == documents and len({d["document_id"] for d in delivered}) == documents
        receipts = agency.receipts()
        assert len(receipts) == documents == len(set(receipts)) and {r[2] for r in receipts} == {"01"}
        # a copy the axis delivered twice would be dropped by the gateway, and said: it must not be
        log = (agency.folder / "gateway.log").read_text(encoding="utf-8")
        assert "duplicate_dropped" not in log
