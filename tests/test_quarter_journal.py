"""The quarter replay's journal (bench/replay/journal.py): what a kept replay has done and cost,
read back whole after a cut, and the processes a cut left behind stopped, only those."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.replay.journal import NAME, Journal, Spent, stop_leftovers


def test_a_journal_reads_back_what_was_written(tmp_path: Path) -> None:
    written = Journal(tmp_path / NAME, 0.01, 7, "week", commit="abc", steps_done=4, moment=1690851600.5)
    written.current = Spent(wall=12.5, cpu_by_kind={"national axis": 3.0}, system=0.5, peaks={"national axis": 80})
    written.restart_seconds.append(31.0)
    written.disk_before = (1000, 10)
    written.save()
    assert Journal.load(tmp_path) == written
    assert not list(tmp_path.glob(".*"))  # the file written beside it was renamed over it


def test_a_resumed_journal_adds_the_cut_stretch_to_the_earlier_ones() -> None:
    journal = Journal(Path("j"), 1.0, 2023, "day")
    journal.earlier = Spent(wall=100, cpu_by_kind={"a": 10, "b": 5}, system=2, generator=1, peaks={"a": 90})
    journal.current = Spent(wall=50, cpu_by_kind={"a": 4, "c": 1}, system=1, generator=0.5, peaks={"a": 95, "c": 70})
    journal.resumed()
    assert journal.current == Spent()
    assert journal.earlier == Spent(
        wall=150, cpu_by_kind={"a": 14, "b": 5, "c": 1}, system=3, generator=1.5, peaks={"a": 95, "c": 70}
    )
    assert journal.spent == journal.earlier


def test_a_folder_that_is_no_journal_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"holds no replay-journal\.json"):
        Journal.load(tmp_path)
    (tmp_path / NAME).write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit, match="is not a journal"):
        Journal.load(tmp_path)


def test_only_the_processes_working_in_the_replay_are_stopped(tmp_path: Path) -> None:
    inside, outside = tmp_path / "province" / "000.00.01.H58", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    left = subprocess.Popen(sleeper, cwd=inside)
    other = subprocess.Popen(sleeper, cwd=outside)
    try:
        killed = stop_leftovers([left.pid, other.pid, 2**22 + 1], tmp_path / "province")
        assert killed == [left.pid]
        assert left.wait(10) == -9
        time.sleep(0.1)
        assert other.poll() is None
    finally:
        for process in (left, other):
            process.kill()
            process.wait()
