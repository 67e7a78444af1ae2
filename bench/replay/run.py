"""The replay itself, under the shifted clock: build, start, step through the quarter, check, measure."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bench.replay import build, figures, floor, footprint, journal, ledger, shape, steps, traffic
from bench.replay.clock import ShiftedClock
from bench.replay.cost import Meter
from bench.replay.processes import Process, stop_leftovers
from bench.replay.progress import Progress
from bench.tools.profiling import start_profilers, stop_profilers
from gateway.edxml import VIETNAM

# CPU of the 50 processes with no traffic (timers, long-polls), measured before it begins: the
# share of each delivery's cost that depends on how long the run takes, not on what it carries.
IDLE_SECONDS = 10.0
# a resumed province's clock starts this long after the latest time it saw: what the gateways
# had set to happen within it is due at once, rather than waited for
RESUME_MARGIN_SECONDS = 60.0
FIGURES = "figures.json"  # the finished replay's figures, beside its journal
LOCK = "replay.lock"  # held by the generator running the replay: one at a time in a folder


@dataclass
class Province:
    folders: build.Folders
    shape: shape.Shape
    clock: ShiftedClock
    processes: list[Process] = field(default_factory=list)

    def start_axis(self, kind: str, folder: Path) -> str:
        process = Process.start(kind, folder.name, ["axis", "--config", "axis.toml"], cwd=folder, env=self.clock.env)
        self.processes.append(process)
        port = process.wait_for("axis_listening")["port"]
        config = folder / "axis.toml"
        config.write_text(config.read_text(encoding="utf-8").replace("\nport = 0\n", f"\nport = {port}\n"), "utf-8")
        return f"http://127.0.0.1:{port}"

    def start_gateways(self) -> None:
        started = []
        for installation in self.shape.installations.values():
            kind = "outside gateway" if installation.outside else "province gateway"
            folder = self.folders.installation(installation)
            args = ["run", "--config", "gateway.toml"]
            started.append(Process.start(kind, installation.code, args, cwd=folder, env=self.clock.env))
        self.processes += started
        for process in started:
            process.wait_for("gateway_started", timeout=600)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _moment(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=VIETNAM)


def _wait_for_directories(province: Province, timeout: float = 600.0) -> None:
    """Until each axis lists every agency of the country: the bridge registers the province's
    hosted agencies upstream as the installations register them with it."""
    from gateway.axis_client import AxisClient
    from gateway.errors import AxisUnavailable

    everyone = set(province.shape.agencies)
    folders = province.folders
    asks = [
        (folders.provincial, "000.00.00.H58"),
        (folders.national, "000.00.00.G22"),
    ]

    async def listed(folder: Path, code: str) -> set[str]:
        url = _url(folder)
        secret = (folder / f"sys-{code}.secret").read_text(encoding="utf-8").strip()
        async with AxisClient(url, f"sys-{code}", secret, timeout=30) as client:
            return {str(a.get("code")) for a in await client.agencies()}

    deadline = time.monotonic() + timeout
    for folder, code in asks:
        while True:
            try:
                missing = everyone - asyncio.run(listed(folder, code))
            except AxisUnavailable as exc:  # busy: a province resumed mid-step catches up as it starts
                missing, why = everyone, str(exc)
            else:
                why = f"{len(missing)} agencies missing, e.g. {sorted(missing)[:3]}"
            if not missing:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{folder.name} did not list the country within {timeout:.0f} s: {why}")
            time.sleep(1.0)


def _url(axis_folder: Path) -> str:
    text = (axis_folder / "axis.toml").read_text(encoding="utf-8")
    port = next(line.split("=")[1].strip() for line in text.splitlines() if line.startswith("port ="))
    return f"http://127.0.0.1:{port}"


def report_period(since: str | None, through: str | None) -> list[str]:
    """The report's arguments for the quarter, or for the stretch replayed (--from, --through)."""
    if since is None and through is None:
        return ["--quarter", "2023Q3"]
    first, last = traffic.stretch_window(since, through)
    return ["--from", first, "--to", last]


def _report(province: Province, since: str | None, through: str | None) -> dict:
    """The province's report over what was replayed."""
    period = report_period(since, through)
    command = ["report", "--config", str(province.folders.province), *period, "--format", "json"]
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", *command], capture_output=True, text=True, timeout=1800
    )
    if completed.returncode != 0:
        raise RuntimeError(f"report failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)


def replay(root: Path, args: argparse.Namespace) -> int:
    """The replay, made anew in ``root`` or (``args.resume``) gone on with from its journal."""
    with (root / LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released however this process ends
        except BlockingIOError:
            print(f"quarter: another replay runs in {root}", file=sys.stderr)
            return 2
        record = _journal(root, args)
        if isinstance(record, str):
            print(f"quarter: {record}", file=sys.stderr)
            return 2
        return _run(root, args, record)


def _journal(root: Path, args: argparse.Namespace) -> journal.Journal | str:
    """The journal to go on with, or why there is none."""
    commit = _commit()
    if args.resume is None:
        return journal.Journal(
            root / journal.NAME,
            args.scale,
            args.seed,
            args.step,
            commits=[commit],
            through=args.through,
            since=args.since,
        )
    try:
        record = journal.Journal.load(root)
    except journal.NoJournal as exc:
        return str(exc)
    if record.finished:
        return f"the replay in {root} has finished; its figures are in {root / FIGURES}"
    if not record.traffic_began:
        return f"the replay in {root} was cut before its traffic began: remove the folder and start again"
    if commit != record.commits[0]:
        print(f"quarter: warning: begun at {record.commits[0]}, going on at {commit}", file=sys.stderr)
    record.commits.append(commit)
    if args.through is not None:  # a resumed replay may be made a stretch, or a longer one
        record.through = args.through
    return record


def _run(root: Path, args: argparse.Namespace, record: journal.Journal) -> int:
    began = time.monotonic()
    resuming = args.resume is not None
    clock = ShiftedClock(root / "clock")
    the_shape = shape.build()
    quarter = traffic.plan(the_shape, record.scale, record.seed, step=record.step)
    plan = _stretch(quarter, record)
    if isinstance(plan, str):
        print(f"quarter: {plan}", file=sys.stderr)
        return 2
    if args.interrupt_in_step is not None and not 1 <= args.interrupt_in_step <= len(plan.steps):
        print(f"quarter: --interrupt-in-step is a step from 1 to {len(plan.steps)}", file=sys.stderr)
        return 2
    folders = build.Folders(root)
    if resuming:
        killed = stop_leftovers(record.pids, clock.offset_file)
        if killed:
            print(f"quarter: killed {len(killed)} processes left from before the cut", file=sys.stderr)
        record.resumed()
        # the clock goes on from a little after the latest the province saw (the journal's or
        # its logs'), never back: a retry the gateways set before the cut is not put off
        logs = [folder / name for folder in folders.process_folders(the_shape) for name in ("gateway.log", "axis.log")]
        latest = max(record.moment, steps.latest_moment(logs))
        clock.set(datetime.fromtimestamp(latest + RESUME_MARGIN_SECONDS, tz=VIETNAM))
        if record.steps_done < len(plan.steps):
            repaired = steps.repair(folders, the_shape, plan.steps[record.steps_done])
            if repaired:
                print(f"quarter: {repaired} files the cut left short written again", file=sys.stderr)
    else:
        clock.set(_moment(plan.days[0], 7))
        build.write_province(folders, the_shape)
    province = Province(folders, the_shape, clock)
    built = time.monotonic()
    made = "found" if resuming else "written"
    print(f"quarter: province {made} in {built - began:.1f} s under {root}", file=sys.stderr)
    meter: Meter | None = None

    def checkpoint(ahead: float = 0.0) -> None:
        """The journal written; its clock never behind the province's (``ahead``: where it is set next)."""
        if meter is not None:
            record.current = meter.spent()
        record.moment = max(record.moment, clock.now(), ahead)
        record.save()

    try:
        national_url = province.start_axis("national axis", folders.national)
        if not resuming:
            build.bridge(folders, national_url)
        provincial_url = province.start_axis("provincial axis", folders.provincial)
        if not resuming:
            build.write_gateways(folders, the_shape, national_url, provincial_url)
        province.start_gateways()
        record.pids = [p.popen.pid for p in province.processes]
        if resuming:  # what a restarting province does is traffic: it takes up where the cut left it
            meter = Meter(province.processes, from_start=True, began=built)
        checkpoint()
        _wait_for_directories(province)
        started = time.monotonic()
        print(f"quarter: {len(province.processes)} processes up in {started - built:.1f} s", file=sys.stderr)

        databases = [folders.installation(i) / "var" / "gateway.sqlite3" for i in the_shape.installations.values()]
        progress = Progress(databases)
        profiled = _profiled(province)
        if resuming:
            record.restart_seconds.append(started - began)
        else:
            record.setup_seconds = started - began
            record.idle_percent = _idle_percent(province, profiled, args.profile)
            # empty databases, WAL files, folders: not the documents' cost
            record.disk_before = footprint.disk_bytes(root)
            record.traffic_began = True
            meter = Meter(province.processes)
        profilers = start_profilers(profiled, args.profile)
        checkpoint()
        pace = steps.Pace(progress, args.stall_seconds, checkpoint, province.processes)
        expected = steps.Expected()
        resumed_at = record.steps_done if resuming else None
        for number, step in enumerate(plan.steps):
            if number < record.steps_done:  # done before a cut
                expected.add_documents(step)
                expected.add_answers(step)
                continue
            step_began, step_cpu, delivered_before = time.monotonic(), _cpu(province), expected.deliveries
            # the step gone on with after a cut: its pace counts what was delivered before the cut too
            resumed_here = number == resumed_at
            # never back: a resumed step goes on at the clock the cut left
            moment = max(_moment(step.day, 8 if number < len(plan.days) else 17).timestamp(), clock.now())
            checkpoint(ahead=moment)
            clock.set(datetime.fromtimestamp(moment, tz=VIETNAM))
            # the day's answers, each dropped as soon as the document it answers is delivered
            owed = steps.Owed(folders, the_shape, step.answers, pace)
            for document in step.documents:
                steps.drop(folders, the_shape, document)
                pace.tick()
            for planned in step.carried:
                steps.answer(folders, the_shape, planned)
                pace.tick()
            if args.interrupt_in_step == number + 1:
                pace.cut_at = expected.deliveries + sum(len(d.recipients) for d in step.documents) // 2
            expected.add_documents(step)
            pace.wait_quiet(expected, step.day, meanwhile=owed.drop_arrived)
            owed.drop_the_rest()
            steps.recall(folders, the_shape, step.recalls, pace.tick)
            expected.add_answers(step)
            pace.wait_quiet(expected, step.day)
            record.steps_done = number + 1
            checkpoint()
            seconds = max(time.monotonic() - step_began, 1e-6)
            cores = (_cpu(province) - step_cpu) / seconds
            print(
                f"quarter: {step.day} {len(step.documents)} documents, {len(step.answers) + len(step.carried)}"
                f" answers, {len(step.recalls)} recalls; {expected.deliveries} deliveries so far;"
                f" the step {seconds:.1f} s, {(expected.deliveries - delivered_before) / seconds:.1f} deliveries/s,"
                f" {cores:.2f} cores{' (resumed in this step)' if resumed_here else ''}",
                file=sys.stderr,
            )
        stop_profilers(profilers)
        progress.close()
    finally:
        checkpoint()  # a run that failed keeps what it cost until here
        province.stop()
    verdict = ledger.check(folders, the_shape, plan)
    for event, lines in footprint.errors_logged(root).most_common():
        verdict.errors_logged += lines
        verdict.note(f"{lines} error lines in the logs: {event}")
    province_codes = {a.code for a in the_shape.province}
    report = _report(province, record.since, record.through)
    the_floor = floor.measure(folders.pki, the_shape)  # the province stopped: the machine is the floor's
    disk = footprint.disk_bytes(root)
    result = figures.compute(record, plan, province_codes, report, verdict, disk, the_floor, quarter.deliveries)
    written = root / f".{FIGURES}.tmp"
    written.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    written.replace(root / FIGURES)  # before the journal says finished, which points to it
    record.finished = True
    record.save()
    figures.show(result, verdict)
    if args.profile:
        figures.show_profiles(args.profile)
    return 0 if result["report_matches_plan"] and verdict.clean else 1


def _stretch(quarter: traffic.Plan, record: journal.Journal) -> traffic.Plan | str:
    """The plan this replay runs: the quarter, or its stretch from a day or through one; or why not."""
    plan = quarter
    try:
        if record.since is not None:
            plan = plan.since(date.fromisoformat(record.since))
        if record.through is None:
            return plan
        if record.since is not None and record.through < record.since:  # ISO days compare as text
            return f"--through {record.through} is before the replay's --from {record.since}"
        plan = plan.through(date.fromisoformat(record.through))
    except ValueError as exc:
        asked = " ".join(f"{option} {day}" for option, day in traffic.stretch_options(record.since, record.through))
        return f"{asked}: {exc}"
    # a run cut in the step of the day after --through (or later) has dropped documents the
    # stretch does not plan: the checkpoint before a step's drops holds its 08:00
    kept, following = len(plan.days), quarter.days.index(plan.days[-1]) + 1
    if record.steps_done > kept or (
        record.steps_done == kept
        and following < len(quarter.days)
        and record.moment >= _moment(quarter.days[following], 8).timestamp()
    ):
        past = f"in or after the step of {quarter.days[following]}"
        return f"--through {record.through}: the replay is past that day already ({past})"
    return plan


def _cpu(province: Province) -> float:
    """CPU seconds of the province's processes so far: a step's pace beside what it cost."""
    return sum(process.cpu_seconds() for process in province.processes)


def _idle_percent(province: Province, profiled: dict[str, int], profile: Path | None) -> float:
    """CPU of the province's processes with nothing to do, in per cent of a core."""
    idle_before = _cpu(province)
    profilers = start_profilers(profiled, profile and profile / "idle")
    time.sleep(IDLE_SECONDS)
    stop_profilers(profilers)
    return 100 * (_cpu(province) - idle_before) / IDLE_SECONDS


def _commit() -> str:
    """The project's commit the replay runs, for the journal: a resumed run should run the same."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    completed = subprocess.run(
        [git, "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or "unknown"


def _profiled(province: Province) -> dict[str, int]:
    """The processes --profile samples: both axes, UBND tỉnh's gateway (the province's busiest),
    the first sở and the first huyện (each hosting many agencies)."""
    chosen: dict[str, int] = {}
    for process in province.processes:
        label = process.kind.replace(" ", "-")
        if process.kind.endswith("axis") or process.name == shape.PROVINCE_CODE:
            chosen[f"{label}-{process.name}"] = process.popen.pid
        elif process.kind == "province gateway":
            role = "huyen" if int(process.name.split(".")[2]) > 33 else "so"  # 000.00.34-44.H58
            chosen.setdefault(f"{label}-{role}", process.popen.pid)
    return chosen
