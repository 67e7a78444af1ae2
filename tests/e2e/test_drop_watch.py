"""Drop folders watched through inotify: intake runs when an entry arrives, not at its tick.

The rescan of watched folders is a minute here, and intake's tick too unless a test needs the
tick itself: a document taken within seconds was taken because the kernel said it arrived. A
drop folder moved away puts intake back on its tick, with a warning, and nothing dropped
afterwards waits for a watch that is gone.
"""

from __future__ import annotations

import time

from gateway.workspace import QUICK_TIMING
from tests.e2e.province import build_province, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
DISTRICT, XA_HAU_THANH, XA_AN_HUU = "000.00.31.H58", "000.01.31.H58", "000.02.31.H58"


def _slow_ticks(intake: float) -> str:
    """The test suite's timing with intake's tick at ``intake`` s and watched folders rescanned once a minute."""
    return QUICK_TIMING.replace("intake = 0.2", f"intake = {intake}").replace(
        "settle_seconds = 0.3", "settle_seconds = 0.3\nrescan_seconds = 60.0"
    )


def _started(sender) -> dict:
    return sender.service.wait_for(lambda e: e.get("event") == "gateway_started", "the start")


def test_a_job_renamed_into_a_watched_drop_folder_is_taken_well_before_any_tick(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], timing=_slow_ticks(60.0))
    try:
        province.start(DEPARTMENT)
        sender = province.start(PROVINCE)
        started = _started(sender)
        assert started["drop_folders"] == "watched" and started["workers"]["intake"] == 60.0, started
        time.sleep(1.0)  # intake's first run, at start, is over: only a wake-up can take what comes now
        dropped = time.monotonic()
        province.drop_job(PROVINCE, "watched", {"to": [DEPARTMENT], "subject": "Văn bản theo dõi"}, {})
        sender.service.wait_for(lambda e: e.get("event") == "intake_taken", "the job taken in", timeout=20)
        assert time.monotonic() - dropped < 20  # the tick, and the rescan, are a minute away
        wait_until(lambda: len(sender.receipts()) == 1, "its 01", timeout=30)
        # intake's own dot-named markers and renames do not keep waking it
        taken = sender.service.events_where(lambda e: e.get("event") == "intake_taken")
        assert len(taken) == 1, taken
        assert not sender.service.events_where(lambda e: e.get("event") == "drop_folders_polled")
    finally:
        province.stop_all()


def test_a_drop_folder_moved_away_puts_intake_back_on_its_tick(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], timing=_slow_ticks(0.2))
    try:
        province.start(DEPARTMENT)
        sender = province.start(PROVINCE)
        assert _started(sender)["drop_folders"] == "watched"
        outbox = province.agency(PROVINCE).outbox
        outbox.rename(outbox.with_name("outbox.moved"))
        outbox.mkdir()
        lost = sender.service.wait_for(lambda e: e.get("event") == "drop_folders_polled", "the watch given up")
        assert "moved" in lost["reason"] and lost["every"] == 0.2
        province.drop_job(PROVINCE, "after", {"to": [DEPARTMENT], "subject": "Văn bản sau khi chuyển thư mục"}, {})
        wait_until(lambda: len(sender.receipts()) == 1, "the job taken by the 0.2 s tick", timeout=30)
    finally:
        province.stop_all()


def test_watch_false_reads_the_drop_folder_at_every_tick(tmp_path):
    timing = _slow_ticks(0.2).replace("rescan_seconds = 60.0", "rescan_seconds = 60.0\nwatch = false")
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], timing=timing)
    try:
        province.start(DEPARTMENT)
        sender = province.start(PROVINCE)
        started = _started(sender)
        assert started["drop_folders"] == "polled" and started["workers"]["intake"] == 0.2
        province.drop_job(PROVINCE, "polled", {"to": [DEPARTMENT], "subject": "Văn bản đọc theo nhịp"}, {})
        wait_until(lambda: len(sender.receipts()) == 1, "its 01", timeout=30)
    finally:
        province.stop_all()


def test_hosted_agencies_folders_are_watched_and_one_gone_stops_none_of_the_others(tmp_path):
    """A huyện hosting two xã: a job in the second xã's folder is taken at once (every drop
    folder is watched, not only the installation's own); with the first xã's folder moved
    away for good, intake says so once and goes on reading the others at its tick.

    Intake's tick is 1 s, but while the folders are watched intake runs at the rescan, once a
    minute: only the watch takes the xã's job within the 20 s waited; once the watch is given
    up, the tick reads the folders again (every 1 s, not a minute later)."""
    hosted = {DISTRICT: {XA_HAU_THANH: "UBND xã Hậu Thành", XA_AN_HUU: "UBND xã An Hữu"}}
    province = build_province(tmp_path, [PROVINCE, DISTRICT], timing=_slow_ticks(1.0), hosted=hosted)
    try:
        province.start(PROVINCE)
        huyen = province.start(DISTRICT)
        assert _started(huyen)["workers"]["intake"] == 60.0  # watched: the rescan, not the 1 s tick
        huyen.service.wait_for(lambda e: e.get("event") == "agencies_registered", "registration")
        time.sleep(1.0)
        province.drop_job(XA_AN_HUU, "from-xa", {"to": [PROVINCE], "subject": "Báo cáo của xã"}, {})
        huyen.service.wait_for(lambda e: e.get("event") == "intake_taken", "the xã's job taken in", timeout=20)

        gone = province.agency(XA_HAU_THANH).outbox
        gone.rename(gone.with_name("outbox.gone"))
        polled = huyen.service.wait_for(lambda e: e.get("event") == "drop_folders_polled", "the watch given up")
        assert "outbox" in polled["reason"] and polled["every"] == 1.0
        province.drop_job(DISTRICT, "from-huyen", {"to": [PROVINCE], "subject": "Báo cáo của huyện"}, {})
        wait_until(
            lambda: len(huyen.service.events_where(lambda e: e.get("event") == "intake_taken")) == 2,
            "the huyện's own job, read past the missing folder",
            timeout=30,
        )
        unreadable = huyen.service.events_where(lambda e: e.get("event") == "drop_folder_unreadable")
        assert len(unreadable) == 1 and XA_HAU_THANH in unreadable[0]["folder"], unreadable
        assert "worker_error" not in huyen.service.event_names()
    finally:
        province.stop_all()
