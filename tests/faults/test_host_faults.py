"""Faults of the host a gateway runs on: a full inbox disk, a database held by another
program, a second instance on the same folder, a clock that is off. Each ends in a clear
error in the log or on stderr, and nothing queued is lost or doubled."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import Province, build_province, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Province]:
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    yield province
    province.stop_all()


def run_gateway(config: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-P", "-m", "gateway", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def incoming_states(province: Province, code: str) -> list[str]:
    with province.agencies[code].store() as store:
        return [item.state for item in store.reports.incoming_for_kind(MessageType.EDOC)]


# --- the inbox disk is full ---------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where``: a disk that really fills up (ENOSPC)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / ".filler"
    with filler.open("wb", buffering=0) as handle:
        for chunk in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * chunk)
    return filler


def test_inbox_disk_full_keeps_documents_pending_then_delivers_them_once(pair):
    province = pair
    department = province.agencies[DEPARTMENT]
    with small_disk(department.inbox, "4m") as disk:
        filler = fill(disk)
        for code in (PROVINCE, DEPARTMENT):
            province.start(code)
        jobs = 3
        for n in range(jobs):
            job = {"to": [DEPARTMENT], "subject": f"Khi đĩa đầy {n}"}
            province.drop_job(PROVINCE, f"full-{n}", job, {"scan.pdf": os.urandom(200_000)})
        wait_until(
            lambda: department.service.event_names().count("delivery_failed") >= 2 * jobs,
            "deliveries to fail on the full disk",
        )
        failures = [e for e in department.service.events if e.get("event") == "delivery_failed"]
        assert all("DLV900" in e["reason"] and "No space left" in e["reason"] for e in failures), failures[0]
        assert "worker_error" not in department.service.event_names()
        assert department.service.process.poll() is None
        assert department.delivered() == []
        assert [p.name for p in disk.iterdir() if p.name.startswith(".tmp-")] == []
        assert incoming_states(province, DEPARTMENT) == ["listed"] * jobs
        assert province.agencies[PROVINCE].receipts() == [], "01 was sent for a document not in the inbox"

        filler.unlink()
        wait_until(lambda: len(department.delivered()) == jobs, "delivery once space is back")
        wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == jobs, "every 01")
        time.sleep(1.5)
        assert len(department.delivered()) == jobs
        receipts = province.agencies[PROVINCE].receipts()
        assert len(receipts) == jobs and {r[2] for r in receipts} == {"01"}
        department.service.stop()


# --- the database is held by another program -----------------------------------------------------


def test_a_database_locked_by_another_program_is_a_clear_error_and_waits_for_a_short_hold(pair):
    province = pair
    agency = province.start(DEPARTMENT)
    assert agency.service.stop() == 0
    database = agency.folder / "var" / "gateway.sqlite3"
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # an admin's sqlite3 shell with an open write transaction
    before = holder.execute("SELECT count(*) FROM meta").fetchone()[0]

    started = time.monotonic()
    refused = run_gateway(agency.config)
    waited = time.monotonic() - started
    assert refused.returncode == 1, refused.stderr
    assert "DB700" in refused.stderr and "locked by another program" in refused.stderr
    assert str(database) in refused.stderr and "Traceback" not in refused.stderr
    assert waited >= 9, "gave up before the busy timeout"
    assert holder.execute("SELECT count(*) FROM meta").fetchone()[0] == before

    # a short hold (a backup tool's snapshot) is waited out
    threading.Timer(2.0, lambda: holder.execute("ROLLBACK")).start()
    province.start(DEPARTMENT)
    holder.close()
    province.drop_job(PROVINCE, "after-lock", {"to": [DEPARTMENT], "subject": "Sau khi mở khóa"}, {})
    province.start(PROVINCE)
    wait_until(lambda: len(agency.delivered()) == 1, "the gateway to work normally")


def test_a_second_instance_on_the_same_folder_is_refused(pair):
    province = pair
    agency = province.start(DEPARTMENT)
    second = run_gateway(agency.config, timeout=30)
    assert second.returncode == 1
    assert "RUN951" in second.stderr and str(agency.service.process.pid) in second.stderr
    assert ".lock" in second.stderr and "Traceback" not in second.stderr
    # the first one goes on, and the axis is guarded the same way
    province.start(PROVINCE)
    province.drop_job(PROVINCE, "one", {"to": [DEPARTMENT], "subject": "Một lần"}, {})
    wait_until(lambda: len(agency.delivered()) == 1, "delivery by the first instance")
    axis = province.axis
    other_axis = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", "axis", "--config", str(axis.config_path)],
        cwd=axis.folder,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other_axis.returncode == 1 and "RUN951" in other_axis.stderr, other_axis.stderr
    assert axis.service.process.poll() is None


def test_a_killed_instance_leaves_no_stale_lock(pair):
    province = pair
    agency = province.start(DEPARTMENT)
    agency.service.kill()
    province.start(DEPARTMENT)  # flock dies with its process
    assert agency.service.process.poll() is None


# --- the clock is off ------------------------------------------------------------------------------


def skewed(offset: str) -> dict[str, str]:
    """Environment that runs a child with its wall clock moved by ``offset`` (libfaketime)."""
    libfaketime = pytest.importorskip("libfaketime")
    _, additions = libfaketime.get_reload_information()
    return {**additions, "FAKETIME": offset}


def test_clock_skew_within_the_window_works_and_beyond_it_is_named_and_waits(pair):
    province = pair
    skew_env = skewed("+2m")
    sender, receiver = province.agencies[PROVINCE], province.agencies[DEPARTMENT]
    province.start(DEPARTMENT)
    province.start(PROVINCE, env=skew_env)
    province.drop_job(PROVINCE, "a-bit-fast", {"to": [DEPARTMENT], "subject": "Đồng hồ nhanh 2 phút"}, {})
    wait_until(lambda: len(sender.receipts()) == 1, "the exchange with a clock 2 minutes fast")

    sender.service.stop()
    province.start(PROVINCE, env=skewed("+2h"))
    province.drop_job(PROVINCE, "far-off", {"to": [DEPARTMENT], "subject": "Đồng hồ nhanh 2 giờ"}, {})
    refusal = sender.service.wait_for(lambda e: e.get("event") == "axis_refuses_gateway", "the axis to refuse")
    assert refusal["axis_code"] == "16" and refusal["code"] == "AXS602" and "clock" in refusal["hint"]

    def refused_calls() -> int:  # counted where they arrive: the gateway logs an outage once a minute
        def ours(event: dict) -> bool:  # only this gateway's clock is off: every 16 is one of its calls
            return event.get("event") == "request_refused" and event.get("code") == "16"

        return len(province.axis.service.events_where(ours))

    before = refused_calls()
    time.sleep(5)
    refused = refused_calls() - before
    assert 1 <= refused <= 2 * 5 + 5, f"{refused} calls in 5 s against an axis that refuses every one"
    assert sender.service.event_names().count("axis_refuses_gateway") == 1, "said once, then once a minute"
    with sender.store() as store:
        states = [item.state for item in store.reports.outgoing_for_kind(MessageType.EDOC)]
    assert sorted(states) == ["queued", "sent"], "the refused document must wait, not fail"
    assert sender.service.process.poll() is None

    sender.service.stop()
    province.start(PROVINCE)  # the admin fixed the clock
    wait_until(lambda: len(receiver.delivered()) == 2, "the waiting document")
    wait_until(lambda: len(sender.receipts()) == 2, "its 01")
    time.sleep(1.0)
    assert len(receiver.delivered()) == 2 and len(sender.receipts()) == 2


# --- a document too large for the service's memory ---------------------------------------------

SCAN_BYTES = 24 * 1024 * 1024  # signing it takes long enough to be killed in the middle


def drop_scan(province: Province, name: str) -> Path:
    scan = {"scan.pdf": os.urandom(SCAN_BYTES)}
    province.drop_job(PROVINCE, name, {"to": [DEPARTMENT], "subject": f"Bản scan lớn {name}"}, scan)
    return province.agencies[PROVINCE].outbox / f".preparing-{name}"


def kill_while_preparing(province: Province, marker: Path, attempt: int) -> None:
    """Start the sender and SIGKILL it while it prepares the scan, as the OOM killer would."""
    agency = province.start(PROVINCE)
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text() == str(attempt)):
        assert time.monotonic() < deadline, f"preparation {attempt} never started"
        assert agency.service.process.poll() is None
        time.sleep(0.005)
    agency.service.kill()
    assert (marker.parent / marker.name.removeprefix(".preparing-")).is_dir(), "taken before the kill"


def test_a_gateway_killed_while_preparing_a_large_entry_sends_it_once_after_restart(pair):
    province = pair
    province.start(DEPARTMENT)
    marker = drop_scan(province, "scan-once")
    kill_while_preparing(province, marker, 1)
    sender = province.start(PROVINCE)
    wait_until(lambda: len(sender.receipts()) == 1, "the 01 for the scan", timeout=120)
    assert not marker.exists()
    assert len(list(province.agencies[DEPARTMENT].inbox.glob("*/document.json"))) == 1


def test_a_large_entry_that_keeps_killing_the_gateway_is_refused_after_two_deaths(pair):
    """Under MemoryMax a scan that does not fit kills the service at every start (systemd
    restarts it): intake counts the preparations that never came back and, after two, refuses
    the entry with the reason instead of dying a third time."""
    province = pair
    marker = drop_scan(province, "scan-too-big")
    kill_while_preparing(province, marker, 1)
    kill_while_preparing(province, marker, 2)
    sender = province.start(PROVINCE)
    failed = province.agencies[PROVINCE].outbox / "failed"
    error = wait_until(lambda: (failed / "scan-too-big.error.txt").is_file(), "the refusal", timeout=60) and (
        failed / "scan-too-big.error.txt"
    ).read_text(encoding="utf-8")
    assert "INT800" in error and "stopped 2 times while preparing" in error and "[limits] max_bytes" in error
    assert (failed / "scan-too-big" / "scan.pdf").stat().st_size == SCAN_BYTES  # kept whole for the admin
    assert not marker.exists() and sender.service.process.poll() is None
    assert "message_queued" not in sender.service.event_names()
