"""SIGKILL an installation hosting two xã while documents to both, and from one of them, cross
it: each hosted inbox holds every document once, every 01 comes back signed by its xã, and
what the xã dropped is sent once."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.province import build_province, free_port, wait_until

PROVINCE, DISTRICT = "000.00.00.H58", "000.00.31.H58"
XA_HAU_THANH, XA_AN_HUU = "000.01.31.H58", "000.02.31.H58"


@pytest.fixture
def huyen(tmp_path):
    hosted = {DISTRICT: {XA_HAU_THANH: "UBND xã Hậu Thành", XA_AN_HUU: "UBND xã An Hữu"}}
    province = build_province(tmp_path, [PROVINCE, DISTRICT], axis_port=free_port(), hosted=hosted)
    yield province
    province.stop_all()


def job(recipients: list[str], n: int) -> dict:
    return {"to": recipients, "subject": f"Văn bản số {n}", "code_number": str(n), "code_notation": "UBND"}


@pytest.mark.parametrize(
    ("documents", "seconds_of_kills"),
    [
        pytest.param(40, 8, id="hosted-40-documents"),
        pytest.param(200, 30, id="hosted-200-documents", marks=pytest.mark.slow),
    ],
)
def test_sigkill_loop_at_an_installation_hosting_two_agencies(huyen, documents, seconds_of_kills):
    province = huyen
    rng = random.Random(documents)
    province.start(DISTRICT)
    province.agencies[DISTRICT].service.wait_for(lambda e: e.get("event") == "agencies_registered", "registration")
    province.start(PROVINCE)
    for n in range(documents):
        province.drop_job(PROVINCE, f"to-xa-{n:04d}", job([XA_HAU_THANH, XA_AN_HUU], n), {"a.txt": b"x" * 2000})
        if n % 2 == 0:
            province.drop_job(XA_HAU_THANH, f"from-xa-{n:04d}", job([PROVINCE], n), {"b.txt": b"y" * 2000})
    from_xa = (documents + 1) // 2

    def arrived() -> bool:
        return (
            all(len(province.hosted[code].delivered()) >= documents for code in (XA_HAU_THANH, XA_AN_HUU))
            and len(province.agencies[PROVINCE].delivered()) >= from_xa
            and len(province.agencies[PROVINCE].receipts()) >= 2 * documents
            and len(province.agencies[DISTRICT].receipts()) >= from_xa
        )

    kills = 0
    deadline = time.monotonic() + seconds_of_kills
    # three kills at least: on a loaded machine a restart takes seconds, and on a fast one the
    # exchange may be over before the deadline
    while kills < 3 or (time.monotonic() < deadline and not arrived()):
        time.sleep(rng.uniform(0.1, 0.6))
        province.agencies[DISTRICT].service.kill()
        kills += 1
        province.start(DISTRICT)
    wait_until(arrived, "every document and every 01", timeout=180)
    time.sleep(1.0)  # anything duplicated would show up now
    for code in (XA_HAU_THANH, XA_AN_HUU):
        delivered = province.hosted[code].delivered()
        assert len(delivered) == documents and len({d["document_id"] for d in delivered}) == documents
    received = province.agencies[PROVINCE].delivered()
    assert len(received) == from_xa and {d["from"]["code"] for d in received} == {XA_HAU_THANH}
    receipts = province.agencies[PROVINCE].receipts()
    assert len(receipts) == 2 * documents == len(set(receipts))
    assert {(code, status) for _, code, status in receipts} == {(XA_HAU_THANH, "01"), (XA_AN_HUU, "01")}
    assert province.agencies[DISTRICT].delivered() == []
    outbox = province.hosted[XA_HAU_THANH].outbox
    assert [p.name for p in outbox.iterdir()] == ["failed"] and not list((outbox / "failed").iterdir())
