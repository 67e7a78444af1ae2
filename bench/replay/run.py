"""The replay itself, under the shifted clock: build, start, step through the quarter, check, measure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bench.replay import build, figures, footprint, journal, ledger, shape, traffic
from bench.replay.clock import ShiftedClock
from bench.replay.processes import Meter, Process
from bench.replay.progress import Progress
from bench.tools.profiling import start_profilers, stop_profilers
from gateway.daemon.inbox import folder_name
from gateway.edxml import VIETNAM

# CPU of the 50 processes with no traffic (timers, long-polls), measured before it begins: the
# share of each delivery's cost that depends on how long the run takes, not on what it carries.
IDLE_SECONDS = 10.0
# a resumed province's clock starts this long after the journal's last checkpoint, which was at
# most journal.CHECKPOINT_SECONDS before the cut
RESUME_MARGIN_SECONDS = 60.0
FIGURES = "figures.json"  # the finished replay's figures, beside its journal
ATTACHMENT = b"%PDF-1.4\n% a scanned page stands here\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"  # 4 KB


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
            missing = everyone - asyncio.run(listed(folder, code))
            if not missing:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{folder.name} still lacks {len(missing)} agencies, e.g. {sorted(missing)[:3]}")
            time.sleep(1.0)


def _url(axis_folder: Path) -> str:
    text = (axis_folder / "axis.toml").read_text(encoding="utf-8")
    port = next(line.split("=")[1].strip() for line in text.splitlines() if line.startswith("port ="))
    return f"http://127.0.0.1:{port}"


def _drop(province: Province, document: traffic.Planned) -> None:
    """A job folder written as a document system should: hidden first, renamed when complete."""
    names = province.shape.agencies
    outbox = province.folders.outbox(province.shape, document.sender)
    name = f"rp-{document.number:06d}"
    if (outbox / name).exists():
        return  # dropped before a cut, not taken yet: its gateway takes it when it starts
    hidden = outbox / f".{name}"
    shutil.rmtree(hidden, ignore_errors=True)  # half written when a cut came
    hidden.mkdir()
    job = {
        "document_id": document.document_id,
        "to": list(document.recipients),
        "subject": f"Văn bản số {document.number} của {names[document.sender].name}",
        "code_number": str(document.number),
        "code_notation": "VT-RP",
        "promulgation_date": document.day.isoformat(),
        "paper": document.paper,
        "digitized": document.digitized,
    }
    (hidden / "document.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    (hidden / "van-ban.pdf").write_bytes(ATTACHMENT)
    hidden.rename(outbox / name)


@dataclass
class Expected:
    deliveries: int = 0
    receipts: int = 0  # 01 for every delivery, and every answer
    recalls: int = 0  # 13 at every recipient of a recalled document


@dataclass
class Pace:
    """Waits for the exchange to catch up with what was dropped, writing the journal meanwhile;
    ``cut_at``: the deliveries after which the whole province and this generator are killed, as
    a power cut would (--interrupt-in-step, how --resume is tested)."""

    progress: Progress
    stall_seconds: float
    checkpoint: Callable[[], None]
    province: Province
    cut_at: int | None = None

    def wait_quiet(self, expected: Expected, day: date) -> None:
        """Until everything dropped so far has arrived where it was sent."""
        last, moved, saved = None, time.monotonic(), time.monotonic()
        while True:
            self.progress.poll()
            now = (self.progress.delivered + self.progress.refused, self.progress.receipts, self.progress.recalls)
            if self.cut_at is not None and now[0] >= self.cut_at:
                self._cut()
            if all(got >= want for got, want in zip(now, (expected.deliveries, expected.receipts, expected.recalls))):  # noqa: B905
                return
            if time.monotonic() - saved >= journal.CHECKPOINT_SECONDS:
                self.checkpoint()
                saved = time.monotonic()
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.stall_seconds:
                raise TimeoutError(
                    f"{day}: nothing moved for {self.stall_seconds:.0f} s: delivered or refused {now[0]} of"
                    f" {expected.deliveries}, statuses back {now[1]} of {expected.receipts},"
                    f" recalls {now[2]} of {expected.recalls}"
                )
            time.sleep(0.1)

    def _cut(self) -> None:
        print(f"quarter: cutting the power at {self.progress.delivered} deliveries", file=sys.stderr, flush=True)
        for process in self.province.processes:
            process.popen.kill()
        os.kill(os.getpid(), signal.SIGKILL)


def _answer(province: Province, answer: traffic.Answer) -> None:
    """A status file in the recipient's drop folder, as its document system writes one."""
    folder = folder_name(answer.document.sender, answer.document.document_id, "")
    outbox = province.folders.outbox(province.shape, answer.recipient)
    body = {"answers": folder, "code": answer.code, "staff": "Văn thư"}
    if answer.description:
        body["description"] = answer.description
    hidden = outbox / f".{folder}-{answer.code}.status.json"
    hidden.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    hidden.rename(outbox / hidden.name[1:])


def _recall(province: Province, document: traffic.Planned) -> None:
    agency = province.shape.agencies[document.sender]
    config = province.folders.installation(province.shape.installations[agency.installation]) / "gateway.toml"
    if _recalled(config.parent / "var" / "gateway.sqlite3", document.document_id):
        return  # asked before a cut, in the step --resume does again
    command = ["recall", "--config", str(config), document.document_id, "--reason", "Văn bản ban hành nhầm"]
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", *command], capture_output=True, text=True, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"recall of {document.document_id} failed: {completed.stderr[-1000:]}")


def _recalled(database: Path, document_id: str) -> bool:
    """Whether the sender's gateway holds a recall (13) of its document ``document_id``."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as db:
        found = db.execute(
            "SELECT 1 FROM outgoing AS recall JOIN outgoing AS sent ON recall.answers = sent.id"
            " WHERE recall.status_code = '13' AND sent.document_id = ? LIMIT 1",
            (document_id,),
        ).fetchone()
    return found is not None


def _report(province: Province) -> dict:
    command = ["report", "--config", str(province.folders.province), "--quarter", "2023Q3", "--format", "json"]
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", *command], capture_output=True, text=True, timeout=1800
    )
    if completed.returncode != 0:
        raise RuntimeError(f"report failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)


def replay(root: Path, args: argparse.Namespace) -> int:
    """The replay, made anew in ``root`` or (``args.resume``) gone on with from its journal."""
    began = time.monotonic()
    resuming = args.resume is not None
    if resuming:
        record = journal.Journal.load(root)
        if record.finished:
            print(f"quarter: the replay in {root} has finished; its figures are in {root / FIGURES}", file=sys.stderr)
            return 2
    else:
        record = journal.Journal(root / journal.NAME, args.scale, args.seed, args.step, commit=_commit())
    if record.commit != _commit():
        print(f"quarter: warning: begun at {record.commit}, going on at {_commit()}", file=sys.stderr)
    clock = ShiftedClock(root / "clock")
    the_shape = shape.build()
    plan = traffic.plan(the_shape, record.scale, record.seed, step=record.step)
    folders = build.Folders(root)
    if resuming:
        killed = journal.stop_leftovers(record.pids, root)
        if killed:
            print(f"quarter: killed {len(killed)} processes left from before the cut", file=sys.stderr)
        record.resumed()
        # the clock goes on from a little after the last checkpoint, never back: a retry the
        # gateways set before the cut is not put off by the time the cut lost
        clock.set(datetime.fromtimestamp(record.moment + RESUME_MARGIN_SECONDS, tz=VIETNAM))
    else:
        clock.set(_moment(plan.days[0], 7))
        build.write_province(folders, the_shape)
    province = Province(folders, the_shape, clock)
    built = time.monotonic()
    made = "found" if resuming else "written"
    print(f"quarter: province {made} in {built - began:.1f} s under {root}", file=sys.stderr)
    try:
        national_url = province.start_axis("national axis", folders.national)
        if not resuming:
            build.bridge(folders, national_url)
        provincial_url = province.start_axis("provincial axis", folders.provincial)
        if not resuming:
            build.write_gateways(folders, the_shape, national_url, provincial_url)
        province.start_gateways()
        record.pids = [p.popen.pid for p in province.processes]
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
        profilers = start_profilers(profiled, args.profile)
        meter = Meter(province.processes)

        def checkpoint() -> None:
            record.current, record.moment = meter.spent(), clock.now()
            record.save()

        checkpoint()
        pace = Pace(progress, args.stall_seconds, checkpoint, province)
        expected = Expected()
        for number, step in enumerate(plan.steps):
            deliveries = sum(len(d.recipients) for d in step.documents)
            if number < record.steps_done:  # done before a cut
                expected.deliveries += deliveries
                expected.receipts += deliveries + len(step.carried) + len(step.answers)
                expected.recalls += sum(len(d.recipients) for d in step.recalls)
                continue
            # never back: a resumed step goes on at the clock the cut left
            moment = max(_moment(step.day, 8 if number < len(plan.days) else 17).timestamp(), clock.now())
            clock.set(datetime.fromtimestamp(moment, tz=VIETNAM))
            checkpoint()  # the journal's clock is never behind the province's: a resume goes on from it
            for document in step.documents:
                _drop(province, document)
            for answer in step.carried:
                _answer(province, answer)
            if args.interrupt_in_step == number + 1:
                pace.cut_at = expected.deliveries + deliveries // 2
            expected.deliveries += deliveries
            expected.receipts += deliveries + len(step.carried)
            pace.wait_quiet(expected, step.day)
            for answer in step.answers:
                _answer(province, answer)
            for document in step.recalls:
                _recall(province, document)
            expected.receipts += len(step.answers)
            expected.recalls += sum(len(d.recipients) for d in step.recalls)
            pace.wait_quiet(expected, step.day)
            record.steps_done = number + 1
            checkpoint()
            print(
                f"quarter: {step.day} {len(step.documents)} documents, {len(step.answers) + len(step.carried)}"
                f" answers, {len(step.recalls)} recalls; {expected.deliveries} deliveries so far",
                file=sys.stderr,
            )
        stop_profilers(profilers)
        progress.close()
    finally:
        province.stop()
    verdict = ledger.check(folders, the_shape, plan)
    for event, lines in footprint.errors_logged(root).most_common():
        verdict.errors_logged += lines
        verdict.note(f"{lines} error lines in the logs: {event}")
    province_codes = {a.code for a in the_shape.province}
    result = figures.compute(record, plan, province_codes, _report(province), verdict, footprint.disk_bytes(root))
    record.finished = True
    record.save()
    (root / FIGURES).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    figures.show(result, verdict)
    if args.profile:
        figures.show_profiles(args.profile)
    return 0 if result["report_matches_plan"] and verdict.clean else 1


def _idle_percent(province: Province, profiled: dict[str, int], profile: Path | None) -> float:
    """CPU of the province's processes with nothing to do, in per cent of a core."""
    idle_before = sum(p.cpu_seconds() for p in province.processes)
    profilers = start_profilers(profiled, profile and profile / "idle")
    time.sleep(IDLE_SECONDS)
    stop_profilers(profilers)
    return 100 * (sum(p.cpu_seconds() for p in province.processes) - idle_before) / IDLE_SECONDS


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
