"""The quarter replay's journal (bench/replay/journal.py): what a kept replay has done and cost,
read back whole after a cut, and the processes a cut left behind stopped, only those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bench.replay import shape, steps, traffic
from bench.replay.build import Folders
from bench.replay.cost import Spent
from bench.replay.journal import NAME, Journal, NoJournal
from bench.replay.processes import stop_leftovers


def test_a_journal_reads_back_what_was_written(tmp_path: Path) -> None:
    written = Journal(tmp_path / NAME, 0.01, 7, "week", commits=["abc"], steps_done=4, moment=1690851600.5)
    written.since, written.through = "2023-07-10", "2023-08-28"
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
    with pytest.raises(NoJournal, match=r"holds no replay-journal\.json"):
        Journal.load(tmp_path)
    for text in ("{", "[]", '{"scale": 1}'):
        (tmp_path / NAME).write_text(text, encoding="utf-8")
        with pytest.raises(NoJournal, match="is not a journal"):
            Journal.load(tmp_path)


def test_only_the_processes_reading_the_replays_clock_are_stopped(tmp_path: Path) -> None:
    clock_file = tmp_path / "clock" / "clock-offset"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    left = subprocess.Popen(sleeper, env={**os.environ, "SHIFTED_CLOCK_FILE": str(clock_file)})
    other = subprocess.Popen(sleeper, env={**os.environ, "SHIFTED_CLOCK_FILE": str(tmp_path / "another")})
    try:
        killed = stop_leftovers([left.pid, other.pid, 2**22 + 1], clock_file)
        assert killed == [left.pid]
        assert left.wait(10) == -9
        time.sleep(0.1)
        assert other.poll() is None
    finally:
        for process in (left, other):
            process.kill()
            process.wait()


def test_a_resumed_clock_goes_on_from_the_latest_line_logged(tmp_path: Path) -> None:
    axis, gateway, empty = tmp_path / "axis.log", tmp_path / "gateway.log", tmp_path / "new.log"
    line = '{{"event": "x", "timestamp": "{}"}}\n'
    axis.write_text(line.format("2023-08-07T01:00:00.5Z") * 500, encoding="utf-8")
    # a gateway killed in the middle of a line: the last whole one counts
    gateway.write_text(line.format("2023-08-07T01:02:00Z") + '{"event": "y", "timesta', encoding="utf-8")
    empty.touch()
    moment = steps.latest_moment([axis, gateway, empty, tmp_path / "absent.log"])
    assert moment == datetime(2023, 8, 7, 1, 2, tzinfo=UTC).timestamp()


def test_a_job_folder_dropped_again_after_a_cut_is_left_or_written_whole(tmp_path: Path) -> None:
    the_shape = shape.build()
    folders = Folders(tmp_path)
    document = traffic.Planned(7, shape.PROVINCE_CODE, ("000.00.01.H58",), date(2023, 8, 7), False, False)
    outbox = folders.outbox(the_shape, document.sender)
    outbox.mkdir(parents=True)
    (outbox / ".rp-000007").mkdir()  # half written when the cut came
    (outbox / ".rp-000007" / "document.json").write_text("{", encoding="utf-8")
    steps.drop(folders, the_shape, document)
    dropped = outbox / "rp-000007"
    job = json.loads((dropped / "document.json").read_text(encoding="utf-8"))
    assert job["document_id"] == document.document_id and not (outbox / ".rp-000007").exists()
    first = {p.name: p.read_bytes() for p in dropped.iterdir()}
    steps.drop(folders, the_shape, document)  # there, not taken yet: left as it is
    assert {p.name: p.read_bytes() for p in dropped.iterdir()} == first


def test_what_a_cut_left_short_in_the_drop_folders_is_written_again(tmp_path: Path) -> None:
    the_shape = shape.build()
    folders = Folders(tmp_path)
    document = traffic.Planned(8, shape.PROVINCE_CODE, ("000.00.01.H58",), date(2023, 8, 7), False, False)
    untouched = traffic.Planned(9, shape.PROVINCE_CODE, ("000.00.02.H58",), date(2023, 8, 7), False, False)
    planned = traffic.Answer(document, "000.00.01.H58", "03", None)
    step = traffic.Step(date(2023, 8, 7), documents=[document, untouched], answers=[planned])
    folders.outbox(the_shape, document.sender).mkdir(parents=True)
    folders.outbox(the_shape, planned.recipient).mkdir(parents=True)
    steps.drop(folders, the_shape, document)
    steps.drop(folders, the_shape, untouched)
    steps.answer(folders, the_shape, planned)
    whole = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    job = next(p for p in whole if p.name == "document.json" and "rp-000008" in str(p))
    status = next(p for p in whole if p.name.endswith(".status.json"))
    job.write_bytes(b"")  # renamed into place, its content not yet on the disk when it stopped
    status.write_bytes(whole[status][:10])
    assert steps.repair(folders, the_shape, step) == 2
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == whole
    assert steps.repair(folders, the_shape, step) == 0


def test_a_cut_run_becomes_a_stretch_only_before_the_end_of_its_last_day() -> None:
    """--resume --through DAY: a run of the whole quarter cut in DAY's step (or before it) goes on
    as the stretch; one cut in the next day's step has dropped documents the stretch does not
    plan, and is refused (its checkpoint before the drops holds the next day's 08:00)."""
    from bench.replay.run import _moment, _stretch

    quarter = traffic.plan(shape.build(), 0.01, 2023, step="day")
    day, following = quarter.days[9], quarter.days[10]
    cut = Journal(Path("j"), 0.01, 2023, "day", through=day.isoformat())
    for steps_done, moment in ((3, 0.0), (9, _moment(day, 8).timestamp()), (10, _moment(day, 9).timestamp())):
        cut.steps_done, cut.moment = steps_done, moment
        stretch = _stretch(quarter, cut)
        assert isinstance(stretch, traffic.Plan) and stretch.days[-1] == day, (steps_done, stretch)
    for steps_done, moment in ((10, _moment(following, 8).timestamp()), (11, _moment(following, 17).timestamp())):
        cut.steps_done, cut.moment = steps_done, moment
        assert _stretch(quarter, cut) == (
            f"--through {day}: the replay is past that day already (in or after the step of {following})"
        )
    cut.through = date(2023, 7, 15).isoformat()  # a Saturday
    assert "not a day the calendar steps to" in str(_stretch(quarter, cut))
    cut.through = None
    assert _stretch(quarter, cut) is quarter


def test_a_stretch_from_a_day_is_planned_and_checked_as_the_rest_of_the_quarter() -> None:
    """--from DAY (with --through or without): the journal's days give the plan; a day the
    calendar does not step to is said with the option that named it."""
    from bench.replay.run import _moment, _stretch

    quarter = traffic.plan(shape.build(), 0.01, 2023, step="day")
    first, last = quarter.days[50], quarter.days[55]
    run = Journal(Path("j"), 0.01, 2023, "day", since=first.isoformat())
    rest = _stretch(quarter, run)
    assert isinstance(rest, traffic.Plan) and rest.days == quarter.days[50:]
    run.through = last.isoformat()
    window = _stretch(quarter, run)
    assert isinstance(window, traffic.Plan) and window.days == quarter.days[50:56]
    run.steps_done, run.moment = 6, _moment(last, 9).timestamp()  # cut in the stretch's last step
    assert isinstance(_stretch(quarter, run), traffic.Plan)
    run.steps_done, run.moment = 6, _moment(quarter.days[56], 8).timestamp()  # in the step after it
    assert str(_stretch(quarter, run)) == (
        f"--through {last}: the replay is past that day already (in or after the step of {quarter.days[56]})"
    )
    run.steps_done, run.moment, run.through = 0, 0.0, quarter.days[49].isoformat()  # resumed --through too early
    assert _stretch(quarter, run) == f"--through {quarter.days[49]} is before the replay's --from {first}"
    run.through, run.since = None, date(2023, 7, 15).isoformat()  # a Saturday
    assert _stretch(quarter, run) == (
        "--from 2023-07-15: 2023-07-15 is not a day the calendar steps to (a working day, or a week's first)"
    )


def test_the_report_and_the_figures_name_the_stretch_replayed() -> None:
    from bench.replay.figures import _stretch as named
    from bench.replay.run import report_period

    assert report_period(None, None) == ["--quarter", "2023Q3"]
    assert report_period("2023-08-25", None) == ["--from", "2023-08-25", "--to", "2023-09-30"]
    assert report_period(None, "2023-08-24") == ["--from", "2023-07-01", "--to", "2023-08-24"]
    assert named({"since": None, "through": None}) == ""
    assert named({"since": "2023-08-25", "through": None}).endswith(
        "2023-08-25 to 2023-09-30 (--from; the report over it)"
    )
    assert named({"through": "2023-08-24"}).endswith("2023-07-01 to 2023-08-24 (--through; the report over it)")


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--from", "2023-07-15"], "--from 2023-07-15 is not a day the calendar steps to with --step day"),
        (["--from", "2023-08-25", "--through", "2023-08-24"], "--from 2023-08-25 is after --through 2023-08-24"),
        (["--resume", "somewhere", "--from", "2023-08-25"], "no --from with it"),
        (["--through", "2023-07-04", "--scale", "0.01"], "--through 2023-07-04 is not a day the calendar steps to"),
    ],
)
def test_a_stretch_asked_wrongly_is_refused_before_anything_is_built(tmp_path: Path, given: list[str], said: str):
    script = Path(__file__).resolve().parent.parent / "bench" / "quarter.py"
    done = subprocess.run(
        [sys.executable, str(script), *given], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert not any(tmp_path.iterdir())
