"""End-to-end benchmark: documents dropped at senders, delivered in recipients' inboxes, and
their signed status 01 recorded back at the senders, with the cost floor measured in the same run.

    python bench/e2e.py                      # 1,000 documents in a burst, 4 gateways
    python bench/e2e.py --rate 50            # 1,000 documents offered at 50 per second
    python bench/e2e.py --docs 200 --quick   # a short run
    python bench/e2e.py --timing quick       # the test suite's 0.2 s worker intervals
    python bench/e2e.py --idle 0             # skip the 30 s idle measurement before the exchange

An axis and N gateways (the test suite's province: real processes on 127.0.0.1, each with
its configuration, SQLite database, drop folder and inbox) in a ring: gateway i sends to
gateway i+1, so each one sends and receives. Every document is a job folder with a 5 KB
attachment, written hidden and renamed into the drop folder as docs/intake.md asks.
Gateways run on the packaged defaults unless --timing quick.

Measured per document: drop → inbox (document.json written) and drop → 01 recorded at the
sender; documents per second from the first drop to the last 01; CPU time (user + system,
from /proc) of each process divided by the documents. The floor is one process, in this
run, doing only what the exchange cannot avoid for each document: build, validate and sign
it; parse, validate and verify it; build, validate and sign its 01; parse, validate and
verify that. Everything shares the machine's cores; the figures are printed as a table and
as one JSON line. Before the exchange, each process's CPU with no traffic at all is measured
for --idle seconds (the gateways long-polling the axis, timers running).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay import floor as replay_floor
from bench.tools.profiling import start_profilers, stop_profilers, summarize
from gateway.axis.store import AxisStore
from tests.e2e.province import AGENCIES, build_province

TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far, its children's included (a gateway reads
    PDFs in one), both those it has waited for and those still running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    user = (int(fields[11]) + int(fields[13])) / TICKS
    system = (int(fields[12]) + int(fields[14])) / TICKS
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            more = cpu_seconds(int(child))
            user, system = user + more[0], system + more[1]
    return user, system


# --- the floor ---------------------------------------------------------------------------------


def floor(root: Path, codes: list[str], samples: int) -> dict:
    """Documents per second of one process doing only the unavoidable format work: a 5 KB
    document composed, signed and checked, its 01 signed and checked (bench/replay/floor.py)."""
    costs = replay_floor.measure_between(root / "pki", codes[0], codes[1], AGENCIES, os.urandom(5 * 1024), samples)
    milliseconds = costs.per_delivery(documents=1, deliveries=1, statuses=1)  # one recipient, its 01
    return {
        "samples": samples,
        "cpu_ms_per_document": round(milliseconds, 2),
        "per_second": 1000 / milliseconds,
    }


# --- the exchange --------------------------------------------------------------------------------


def drop(province, sender: str, recipient: str, n: int) -> str:
    notation = f"BENCH-{sender[-3:]}"
    province.drop_job(
        sender,
        f"job-{n:06d}",
        {"to": [recipient], "subject": f"Văn bản đo {n}", "code_number": str(n), "code_notation": notation},
        {"phu-luc.pdf": os.urandom(5 * 1024)},
    )
    return f"{n}/{notation}"


def collect(province, codes: list[str], dropped: dict[str, float], timeout: float) -> tuple[dict, dict]:
    delivered: dict[str, float] = {}
    answered: dict[str, float] = {}
    seen: set[str] = set()
    deadline = time.time() + timeout
    while (len(delivered) < len(dropped) or len(answered) < len(dropped)) and time.time() < deadline:
        for code in codes:
            inbox = province.agencies[code].inbox
            for folder in inbox.iterdir() if inbox.is_dir() else ():
                if folder.name.startswith(".") or folder.name in seen:
                    continue
                seen.add(folder.name)
                header = folder / "document.json"
                key = json.loads(header.read_text(encoding="utf-8"))["document_id"].split(",", 2)[-1]
                if key in dropped:
                    delivered[key] = header.stat().st_mtime
            database = province.agencies[code].folder / "var" / "gateway.sqlite3"
            with sqlite3.connect(database, timeout=10) as db:
                for document_id, received_at in db.execute(
                    "SELECT o.document_id, r.received_at FROM receipts r JOIN outgoing o ON o.id = r.outgoing_id"
                    " WHERE r.status_code = '01'"
                ):
                    key = document_id.split(",", 2)[-1]
                    if key in dropped:
                        answered[key] = received_at
        time.sleep(0.1)
    return delivered, answered


def exchange(root: Path, args: argparse.Namespace) -> dict:
    codes = list(AGENCIES)[: args.gateways]
    timing = None if args.timing == "quick" else ""
    province = build_province(root, codes, timing=timing)
    try:
        for code in codes:
            province.start(code)
        processes = {"axis": province.axis.service.process.pid} | {
            code: province.agencies[code].service.process.pid for code in codes
        }
        time.sleep(3.0)  # let start-up work (schema compilation, first polls) settle
        idle = idle_cpu_percent(processes, args.idle)
        profilers = start_profilers(processes, args.profile)
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        dropped: dict[str, float] = {}
        start = time.time()
        for n in range(args.docs):
            if args.rate:
                wait = start + n / args.rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            sender = codes[n % len(codes)]
            recipient = codes[(n + 1) % len(codes)]
            key = drop(province, sender, recipient, n)
            dropped[key] = time.time()
        delivered, answered = collect(province, codes, dropped, timeout=max(300, args.docs / 5))
        cpu_after = {name: cpu_seconds(pid) for name, pid in processes.items()}
        cpu = {name: sum(cpu_after[name]) - sum(cpu_before[name]) for name in processes}
        system = {name: cpu_after[name][1] - cpu_before[name][1] for name in processes}
        stop_profilers(profilers)
    finally:
        province.stop_all()
    calls = axis_calls(province.axis.folder / "data", args.docs)
    commits = axis_commits(province.axis.folder / "axis.log")
    finished = max(answered.values()) if answered else time.time()
    to_inbox = [delivered[k] - dropped[k] for k in delivered]
    to_01 = [answered[k] - dropped[k] for k in answered]

    def legs(values: list[float]) -> dict:
        if not values:
            return {}
        return {f"p{int(q * 100)}_s": round(percentile(values, q), 3) for q in (0.5, 0.95, 0.99)}

    return {
        "gateways": len(codes),
        "documents": args.docs,
        "offered_per_second": args.rate,
        "timing": args.timing,
        "delivered": len(delivered),
        "answered_01": len(answered),
        "documents_per_second": round(len(answered) / (finished - min(dropped.values())), 1),
        "drop_to_inbox": legs(to_inbox),
        "drop_to_01": legs(to_01),
        "drop_to_inbox_mean_s": round(statistics.fmean(to_inbox), 3) if to_inbox else None,
        "cpu_ms_per_document": {name: round(1000 * seconds / args.docs, 2) for name, seconds in cpu.items()},
        "cpu_ms_per_document_total": round(1000 * sum(cpu.values()) / args.docs, 2),
        "cpu_system_share": round(sum(system.values()) / max(sum(cpu.values()), 1e-9), 2),
        "axis_calls_per_document": calls,
        "axis_documents_per_commit": commits,
        "idle_seconds": args.idle,
        "idle_cpu_percent_of_a_core": idle,
    }


def axis_calls(data_dir: Path, documents: int) -> dict[str, float]:
    """The calls the axis answered per document, by name: its replay memory keeps each signed
    request (for ten minutes, longer than this run's traffic)."""
    store = AxisStore(data_dir)
    try:
        rows = store.connection.execute("SELECT call, count(*) FROM seen_requests GROUP BY call").fetchall()
    finally:
        store.close()
    return {call: round(count / documents, 2) for call, count in sorted(tuple(row) for row in rows)}


def axis_commits(log: Path) -> float | None:
    """Messages the axis stored per durable COMMIT (its group commit), as it said when it stopped."""
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"axis_stopped"' in line:
            said = json.loads(line)
            if said.get("commits"):  # an axis from before the group commit does not say
                return round(said["documents_committed"] / said["commits"], 2)
    return None


def idle_cpu_percent(processes: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU each process uses with no traffic (long-polling, timers), in % of one core."""
    if seconds <= 0:
        return {}
    before = {name: sum(cpu_seconds(pid)) for name, pid in processes.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: round(100 * (sum(cpu_seconds(pid)) - before[name]) / elapsed, 2) for name, pid in processes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000, help="documents in all (default 1000)")
    parser.add_argument("--gateways", type=int, default=4, choices=range(2, len(AGENCIES) + 1))
    parser.add_argument("--rate", type=float, default=0.0, help="documents offered per second (default: a burst)")
    parser.add_argument("--timing", choices=("default", "quick"), default="default")
    parser.add_argument("--quick", action="store_true", help="200 documents")
    parser.add_argument("--floor-samples", type=int, default=300)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of no traffic measured first (0: skip)")
    parser.add_argument("--workdir", type=Path, help="where the province is made (default: the system's temp folder)")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of every process (folded stacks)")
    args = parser.parse_args()
    if args.quick:
        args.docs = 200
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as temp:
        result = exchange(Path(temp), args)
        result["floor"] = floor(Path(temp), list(AGENCIES)[:2], args.floor_samples)
    result["floor_documents_per_second"] = round(result["floor"].pop("per_second"), 1)
    result["achieved_over_floor"] = round(result["documents_per_second"] / result["floor_documents_per_second"], 3)

    inbox, answer = result["drop_to_inbox"], result["drop_to_01"]
    print(
        f"{result['documents']} documents, {result['gateways']} gateways, offered "
        f"{args.rate or 'all at once'}/s, timing {args.timing}: {result['delivered']} delivered, "
        f"{result['answered_01']} answered with 01"
    )
    print(f"{'':<22}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}")
    for label, leg in (("drop → inbox", inbox), ("drop → 01 at sender", answer)):
        print(f"{label:<22}{leg.get('p50_s', '-'):>8}{leg.get('p95_s', '-'):>8}{leg.get('p99_s', '-'):>8}")
    print(
        f"end to end: {result['documents_per_second']} documents/s; floor (one process, format work only): "
        f"{result['floor_documents_per_second']} documents/s "
        f"({result['floor']['cpu_ms_per_document']} ms CPU each); achieved/floor = {result['achieved_over_floor']}"
    )
    print(
        "CPU ms per document: "
        + ", ".join(f"{k} {v}" for k, v in result["cpu_ms_per_document"].items())
        + f"; total {result['cpu_ms_per_document_total']} ({int(100 * result['cpu_system_share'])} % in the kernel)"
    )
    print(
        "axis calls per document: "
        + ", ".join(f"{k} {v}" for k, v in result["axis_calls_per_document"].items())
        + f"; messages stored per commit {result['axis_documents_per_commit']}"
    )
    if args.profile:
        for raw in sorted(args.profile.glob("*.txt")):
            print(f"\nprofile of {raw.stem} (share of samples, inclusive):")
            for name, share in summarize(raw):
                print(f"  {share:5.1f} %  {name}")
    if result["idle_cpu_percent_of_a_core"]:
        print(
            f"idle for {args.idle:g} s before the exchange, % of one core: "
            + ", ".join(f"{k} {v}" for k, v in result["idle_cpu_percent_of_a_core"].items())
        )
    print(json.dumps({"benchmark": "e2e", **result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
