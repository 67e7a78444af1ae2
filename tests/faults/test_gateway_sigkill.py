"""SIGKILL gateways, and the axis with them, at random moments of an exchange: nothing lost,
nothing delivered or sent twice, every status delivered."""

from __future__ import annotations

import random
import time

import pytest

from gateway.store import OutgoingState
from gateway.vxp.vocabulary import MessageType
from tests.axis.running import start_axis
from tests.e2e.province import build_province, free_port, wait_until

PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"


@pytest.fixture
def small_province(tmp_path):
    # a fixed port, so that a restarted axis is where the gateways look for it
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT, DISTRICT], axis_port=free_port())
    yield province
    province.stop_all()


def everything_arrived(province, count: int) -> bool:
    return (
        all(len(province.agencies[c].delivered()) >= count for c in (DEPARTMENT, DISTRICT))
        and len(province.agencies[PROVINCE].receipts()) >= 2 * count
    )


@pytest.mark.parametrize(
    ("documents", "seconds_of_kills", "axis_too"),
    [
        pytest.param(100, 8, False, id="gateways-100-documents"),
        pytest.param(100, 10, True, id="gateways-and-axis-100-documents"),
        pytest.param(300, 40, False, id="gateways-300-documents", marks=pytest.mark.slow),
        pytest.param(500, 60, True, id="gateways-and-axis-500-documents", marks=pytest.mark.slow),
    ],
)
def test_sigkill_loop_during_an_exchange(small_province, documents, seconds_of_kills, axis_too):
    province = small_province
    rng = random.Random(documents)
    victims = [*province.agencies, "axis", "axis and a gateway"] if axis_too else list(province.agencies)
    for code in province.agencies:
        province.start(code)
    for n in range(documents):
        province.drop_job(
            PROVINCE,
            f"job-{n:04d}",
            {
                "to": [DEPARTMENT, DISTRICT],
                "subject": f"Văn bản số {n}",
                "code_number": str(n),
                "code_notation": "UBND",
            },
            {f"phu-luc-{n}.txt": f"nội dung {n}".encode() * 50},
        )
    kills = axis_kills = 0
    deadline = time.monotonic() + seconds_of_kills
    # three kills at least (one of the axis when it is a victim too), however fast the exchange:
    # on a fast machine it may be over before the deadline, on a loaded one restarts take seconds
    while (kills + axis_kills < 3 or (axis_too and axis_kills < 1)) or (
        time.monotonic() < deadline and not everything_arrived(province, documents)
    ):
        time.sleep(rng.uniform(0.1, 0.6))
        victim = rng.choice(victims)
        gateways = [victim] if victim in province.agencies else []
        if victim.startswith("axis"):
            if victim != "axis":
                gateways.append(rng.choice(list(province.agencies)))
            province.axis.service.kill()
            axis_kills += 1
        for code in gateways:
            province.agencies[code].service.kill()
            kills += 1
        if victim.startswith("axis"):
            province.axis = start_axis(province.axis.folder, province.axis.config_path)
        for code in gateways:
            province.start(code)
    started = time.monotonic()
    print(f"{documents} documents to 2 recipients, {kills} SIGKILLs of gateways, {axis_kills} of the axis")
    wait_until(lambda: everything_arrived(province, documents), "every document and every 01", timeout=180)
    print(f"everything arrived {time.monotonic() - started:.1f} s after the last kill")
    time.sleep(1.0)  # anything duplicated would show up now
    for code in (DEPARTMENT, DISTRICT):
        delivered = province.agencies[code].delivered()
        assert len(delivered) == documents, f"{code} has {len(delivered)} documents"
        assert len({d["document_id"] for d in delivered}) == documents
        assert not [p for p in province.agencies[code].inbox.iterdir() if p.name.startswith(".tmp-")]
    receipts = province.agencies[PROVINCE].receipts()
    assert len(receipts) == 2 * documents and len(set(receipts)) == 2 * documents
    assert {r[2] for r in receipts} == {"01"}

    def sender_states() -> list:
        with province.agencies[PROVINCE].store() as store:
            return store.reports.outgoing_for_kind(MessageType.EDOC)

    # a document the axis stored and then died before answering is resent after a backoff: its
    # recipients may have it, and their 01s be back, while the sender still holds it queued
    wait_until(lambda: {item.state for item in sender_states()} == {OutgoingState.SENT}, "every document sent")
    sent = sender_states()
    assert len(sent) == documents and {item.state for item in sent} == {OutgoingState.SENT}
    assert len({item.document_id for item in sent}) == documents
    outbox = province.agencies[PROVINCE].outbox
    assert [p.name for p in outbox.iterdir()] == ["failed"] and not list((outbox / "failed").iterdir())
