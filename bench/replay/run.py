"""The replay itself, under the shifted clock: build, start, step through the quarter, check, measure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bench.replay import build, ledger, shape, traffic
from bench.replay.clock import ShiftedClock
from bench.replay.processes import Process
from bench.replay.progress import Progress
from bench.tools.profiling import start_profilers, stop_profilers, summarize
from gateway.daemon.inbox import folder_name
from gateway.edxml import VIETNAM

# CPU of the 50 processes with no traffic (timers, long-polls), measured before it begins: the
# share of each delivery's cost that depends on how long the run takes, not on what it carries.
IDLE_SECONDS = 10.0
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
    hidden = outbox / f".{name}"
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


def _wait_quiet(progress: Progress, expected: Expected, stall_seconds: float, day: date) -> None:
    """Until everything dropped so far has arrived where it was sent."""
    last, moved = None, time.monotonic()
    while True:
        progress.poll()
        now = (progress.delivered + progress.refused, progress.receipts, progress.recalls)
        if all(got >= want for got, want in zip(now, (expected.deliveries, expected.receipts, expected.recalls))):  # noqa: B905
            return
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall_seconds:
            raise TimeoutError(
                f"{day}: nothing moved for {stall_seconds:.0f} s: delivered or refused {now[0]} of"
                f" {expected.deliveries}, statuses back {now[1]} of {expected.receipts},"
                f" recalls {now[2]} of {expected.recalls}"
            )
        time.sleep(0.1)


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
    command = ["recall", "--config", str(config), document.document_id, "--reason", "Văn bản ban hành nhầm"]
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", *command], capture_output=True, text=True, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"recall of {document.document_id} failed: {completed.stderr[-1000:]}")


def _disk_bytes(root: Path) -> tuple[int, int]:
    """Bytes on disk of the exchange's data (records, signed copies, inboxes, the axes' stores)
    and of the logs; the PKI and the replay's own clock are neither. Taken before the traffic
    and after it: the difference is what the documents cost."""
    data = logs = 0
    for folder, _, files in os.walk(root):
        if Path(folder).name in ("pki", "clock"):
            continue
        for name in files:
            try:
                size = os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                continue
            if name.endswith(".log"):
                logs += size
            else:
                data += size
    return data, logs


def _own_cpu_seconds() -> float:
    """This process's CPU and that of the commands it ran and waited for (recall)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _report(province: Province) -> dict:
    command = ["report", "--config", str(province.folders.province), "--quarter", "2023Q3", "--format", "json"]
    completed = subprocess.run(
        [sys.executable, "-P", "-m", "gateway", *command], capture_output=True, text=True, timeout=1800
    )
    if completed.returncode != 0:
        raise RuntimeError(f"report failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)


def replay(root: Path, args: argparse.Namespace) -> int:
    began = time.monotonic()
    clock = ShiftedClock(root / "clock")
    the_shape = shape.build()
    plan = traffic.plan(the_shape, args.scale, args.seed, step=args.step)
    folders = build.Folders(root)
    clock.set(_moment(plan.days[0], 7))
    build.write_province(folders, the_shape)
    province = Province(folders, the_shape, clock)
    built = time.monotonic()
    print(f"quarter: province written in {built - began:.1f} s under {root}", file=sys.stderr)
    try:
        national_url = province.start_axis("national axis", folders.national)
        build.bridge(folders, national_url)
        provincial_url = province.start_axis("provincial axis", folders.provincial)
        build.write_gateways(folders, the_shape, national_url, provincial_url)
        province.start_gateways()
        _wait_for_directories(province)
        started = time.monotonic()
        print(f"quarter: {len(province.processes)} processes up in {started - built:.1f} s", file=sys.stderr)

        databases = [folders.installation(i) / "var" / "gateway.sqlite3" for i in the_shape.installations.values()]
        progress = Progress(databases)
        profiled = _profiled(province)
        idle_before = sum(p.cpu_seconds() for p in province.processes)
        profilers = start_profilers(profiled, args.profile and args.profile / "idle")
        time.sleep(IDLE_SECONDS)
        stop_profilers(profilers)
        idle_percent = 100 * (sum(p.cpu_seconds() for p in province.processes) - idle_before) / IDLE_SECONDS
        cpu_before = {id(p): p.cpu_seconds() for p in province.processes}
        system_before = sum(p.system_seconds() for p in province.processes)
        generator_before = _own_cpu_seconds()
        disk_before = _disk_bytes(root)  # empty databases, WAL files, folders: not the documents' cost
        profilers = start_profilers(profiled, args.profile)
        traffic_began = time.monotonic()
        expected = Expected()
        for number, step in enumerate(plan.steps):
            clock.set(_moment(step.day, 8 if number < len(plan.days) else 17))
            for document in step.documents:
                _drop(province, document)
            for answer in step.carried:
                _answer(province, answer)
            deliveries = sum(len(d.recipients) for d in step.documents)
            expected.deliveries += deliveries
            expected.receipts += deliveries + len(step.carried)
            _wait_quiet(progress, expected, args.stall_seconds, step.day)
            for answer in step.answers:
                _answer(province, answer)
            for document in step.recalls:
                _recall(province, document)
            expected.receipts += len(step.answers)
            expected.recalls += sum(len(d.recipients) for d in step.recalls)
            _wait_quiet(progress, expected, args.stall_seconds, step.day)
            print(
                f"quarter: {step.day} {len(step.documents)} documents, {len(step.answers) + len(step.carried)}"
                f" answers, {len(step.recalls)} recalls; {expected.deliveries} deliveries so far",
                file=sys.stderr,
            )
        wall = time.monotonic() - traffic_began
        cpu = [(p, p.cpu_seconds() - cpu_before[id(p)]) for p in province.processes]
        system = sum(p.system_seconds() for p in province.processes) - system_before
        generator = _own_cpu_seconds() - generator_before  # before py-spy's CPU is counted as a child's
        stop_profilers(profilers)
        peaks: dict[str, float] = {}
        for process in province.processes:
            peaks[process.kind] = max(peaks.get(process.kind, 0.0), process.peak_rss_mib())
        progress.close()
    finally:
        province.stop()
    verdict = ledger.check(folders, the_shape, plan)
    report = _report(province)
    totals = plan.totals({a.code for a in the_shape.province})
    printed = {
        "sent": report["sent"]["total"],
        "sent_with_paper": report["sent"]["with_paper"],
        "received": report["received"]["total"],
        "received_digitized": report["received"]["digitized"],
    }
    deliveries = sum(len(d.recipients) for d in plan.documents)
    answers = sum(len(step.answers) + len(step.carried) for step in plan.steps)
    recalled = sum(len(d.recipients) for step in plan.steps for d in step.recalls)
    cpu_total = sum(seconds for _, seconds in cpu)
    data_bytes, log_bytes = (after - before for after, before in zip(_disk_bytes(root), disk_before, strict=True))
    by_kind: dict[str, float] = {}
    for process, seconds in cpu:
        by_kind[process.kind] = by_kind.get(process.kind, 0.0) + seconds
    figures = {
        "scale": args.scale,
        "seed": args.seed,
        "step": args.step,
        **printed,
        "report_matches_plan": printed == totals,
        "documents": len(plan.documents),
        "deliveries": deliveries,
        "lost": verdict.lost,
        "duplicated": verdict.duplicated,
        "unexpected": verdict.unexpected,
        "receipts_missing": verdict.receipts_missing,
        "statuses_missing": verdict.statuses_missing,
        "statuses_repeated": verdict.statuses_repeated,
        "answers": answers,
        "recalls": sum(len(step.recalls) for step in plan.steps),
        "report_statuses": {
            "refused_by_recipients": sum(report["statuses"]["refused_by_recipients"].values()),
            "finished": report["statuses"]["finished"],
            "accepted_within_1_working_day": report["statuses"]["accepted_within_1_working_day"],
            "recalls_sent": report["statuses"]["recalls_sent"],
        },
        "steps": len(plan.days),
        "setup_seconds": round(started - began, 1),
        "wall_seconds": round(wall, 1),
        "deliveries_per_second": round(deliveries / wall, 1),
        "cpu_ms_per_delivery": round(1000 * cpu_total / deliveries, 2),
        # every message carried: each delivered document, its 01, each answer and recall
        "cpu_ms_per_message": round(1000 * cpu_total / (2 * deliveries + answers + recalled), 2),
        "cpu_system_share": round(system / cpu_total, 3),
        "cpu_ms_per_delivery_by_kind": {k: round(1000 * v / deliveries, 2) for k, v in sorted(by_kind.items())},
        "idle_cpu_percent_of_a_core": round(idle_percent, 1),
        # what the processes would have used with nothing to do for as long as the traffic took
        "idle_share_of_cpu": round(idle_percent / 100 * wall / cpu_total, 3),
        "generator_cpu_ms_per_delivery": round(1000 * generator / deliveries, 2),
        "peak_rss_mib": {k: round(v, 1) for k, v in sorted(peaks.items())},
        "disk_mib_per_1000_documents": round(data_bytes / 2**20 / len(plan.documents) * 1000, 1),
        "log_mib_per_1000_documents": round(log_bytes / 2**20 / len(plan.documents) * 1000, 1),
        "projected_full_scale_seconds": round(wall / args.scale),
    }
    _print(figures, totals, verdict)
    if args.profile:
        _print_profiles(args.profile)
    return 0 if figures["report_matches_plan"] and verdict.clean else 1


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


def _print_profiles(folder: Path) -> None:
    for phase, where in (("traffic", folder), ("idle", folder / "idle")):
        for raw in sorted(where.glob("*.txt")):
            print(f"\nprofile of {raw.stem}, {phase} (share of samples, inclusive):")
            for name, share in summarize(raw, top=24):
                print(f"  {share:5.1f} %  {name}")


def _print(figures: dict, expected: dict, verdict: ledger.Verdict) -> None:
    rows = [
        ("sent (report / plan)", f"{figures['sent']:,} / {expected['sent']:,}"),
        ("  with a paper copy", f"{figures['sent_with_paper']:,} / {expected['sent_with_paper']:,}"),
        ("received (report / plan)", f"{figures['received']:,} / {expected['received']:,}"),
        ("  digitised from paper", f"{figures['received_digitized']:,} / {expected['received_digitized']:,}"),
        ("documents, deliveries", f"{figures['documents']:,}, {figures['deliveries']:,}"),
        ("lost, duplicated, 01 missing", f"{figures['lost']}, {figures['duplicated']}, {figures['receipts_missing']}"),
        ("answers (02-06, 15), recalls (13)", f"{figures['answers']:,}, {figures['recalls']}"),
        ("statuses missing, repeated", f"{figures['statuses_missing']}, {figures['statuses_repeated']}"),
        *((f"  report: {key.replace('_', ' ')}", f"{value:,}") for key, value in figures["report_statuses"].items()),
        ("calendar steps", f"{figures['steps']} ({figures['step']})"),
        ("setup (build, start)", f"{figures['setup_seconds']} s"),
        ("wall time of the traffic", f"{figures['wall_seconds']} s"),
        ("deliveries per second", f"{figures['deliveries_per_second']}"),
        ("CPU ms per delivery, all processes", f"{figures['cpu_ms_per_delivery']}"),
        ("CPU ms per message (document, 01, answer)", f"{figures['cpu_ms_per_message']}"),
        ("  of it in the kernel", f"{figures['cpu_system_share']:.0%}"),
        *((f"  {kind}", f"{ms}") for kind, ms in figures["cpu_ms_per_delivery_by_kind"].items()),
        (
            "idle CPU of all processes (% of a core)",
            f"{figures['idle_cpu_percent_of_a_core']}; {figures['idle_share_of_cpu']:.0%} of the traffic's CPU",
        ),
        ("this generator, CPU ms per delivery", f"{figures['generator_cpu_ms_per_delivery']}"),
        *((f"peak RSS, {kind} (MiB)", f"{mib}") for kind, mib in figures["peak_rss_mib"].items()),
        (
            "disk per 1,000 documents, data; logs (MiB)",
            f"{figures['disk_mib_per_1000_documents']}; {figures['log_mib_per_1000_documents']}",
        ),
        ("projected at scale 1", f"{figures['projected_full_scale_seconds']:,} s"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for example in verdict.examples:
        print(f"  {example}")
    print(json.dumps(figures, ensure_ascii=False))
