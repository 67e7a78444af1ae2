"""Large attachments end to end: time and CPU on each side, peak memory of each process.

    python bench/large.py                  # 1, 20 and 100 MB
    python bench/large.py --sizes 1 20     # some of them
    python bench/large.py --memory-max 512 # both gateways in a 512 MiB memory cgroup (root, cgroup v1 or v2)
    python bench/large.py --sizes 20 --profile /tmp/prof   # py-spy profiles of the three processes
    python bench/large.py --sizes 100 --copies 3 --backlog --memory-max 512
                                           # three 100 MB scans fetched at once after an outage

An axis and two gateways (real processes, packaged defaults) on 127.0.0.1. For each size, one
job folder with one attachment of random bytes (a scanned PDF does not compress either) is
dropped at the sender. Measured per process from /proc: CPU seconds used while the document
went through, and peak resident memory above what the process held before (VmHWM, reset
through /proc/PID/clear_refs). Times come from the gateways' own log events: intake_taken →
message_sent at the sender, message_listed → document_delivered at the recipient.

--memory-max puts both gateways in a memory cgroup with that limit, as systemd's MemoryMax=
does (it counts the page cache too, which the kernel reclaims before it kills anything); a
gateway the kernel kills is started again, as Restart= would, up to three times, and the
outcome says how it ended: delivered, refused by intake's crash-loop guard, or dead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.e2e import start_profilers, stop_profilers, summarize
from tests.e2e.province import build_province, wait_until

SENDER, RECIPIENT = "000.00.00.H58", "000.00.11.H58"
TICKS = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024
RESTARTS = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        return True
    except OSError:
        return False


class MemoryCgroup:
    """A memory cgroup with a limit, v2 (memory.max) or v1 (memory.limit_in_bytes)."""

    def __init__(self, limit_mib: int) -> None:
        name = f"edxml-bench-{os.getpid()}"
        v2 = Path("/sys/fs/cgroup") / name
        v1 = Path("/sys/fs/cgroup/memory") / name
        if Path("/sys/fs/cgroup/cgroup.controllers").is_file():
            self.folder, limit_file = v2, "memory.max"
        elif Path("/sys/fs/cgroup/memory").is_dir():
            self.folder, limit_file = v1, "memory.limit_in_bytes"
        else:
            raise SystemExit("--memory-max needs a memory cgroup (v1 or v2)")
        try:
            self.folder.mkdir()
            (self.folder / limit_file).write_text(str(limit_mib * MiB))
        except OSError as exc:
            raise SystemExit(f"--memory-max: cannot make a memory cgroup: {exc} (run as root)") from None

    def add(self, pid: int) -> None:
        (self.folder / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        for pid in (self.folder / "cgroup.procs").read_text().split():  # back to the parent group
            (self.folder.parent / "cgroup.procs").write_text(pid)
        self.folder.rmdir()


def event_time(service, name: str, after: float) -> float | None:
    for event in list(service.events):
        if event.get("event") == name and "timestamp" in event:
            moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            if moment >= after:
                return moment
    return None


def sent_count(gateway) -> int:
    return sum(1 for event in list(gateway.service.events) if event.get("event") == "message_sent")


def one(
    province,
    size_mib: float,
    n: int,
    profile: Path | None = None,
    restart=None,
    copies: int = 1,
    backlog: bool = False,
) -> dict:
    """One attachment end to end (``copies`` documents with one each, dropped together).
    ``restart(code)`` (with --memory-max) starts a gateway that died again, as systemd's
    Restart= would, up to RESTARTS times. ``backlog``: the recipient is paused (SIGSTOP) until
    every copy waits at the axis, as after an outage, so that it fetches them all at once."""
    sender, recipient = province.agencies[SENDER], province.agencies[RECIPIENT]
    processes = {"sender": sender.service, "axis": province.axis.service, "recipient": recipient.service}
    pids = {name: service.process.pid for name, service in processes.items()}
    resettable = all(reset_peak(pid) for pid in pids.values())
    rss_before = {name: status_kib(pid, "VmRSS") for name, pid in pids.items()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    payload = os.urandom(int(size_mib * MiB))
    sent_before = sent_count(sender)
    profilers = start_profilers(pids, profile / f"{size_mib:g}" if profile else None)
    started = time.time()
    for copy in range(copies):
        province.drop_job(
            SENDER,
            f"large-{n}-{copy}",
            {"to": [RECIPIENT], "subject": f"Tệp lớn {size_mib:g} MB, bản {copy + 1}"},
            {"scan.pdf": payload},
        )
    del payload
    before = len(sender.receipts())
    if backlog:
        recipient.service.process.send_signal(signal.SIGSTOP)
        try:
            wait_until(
                lambda: sent_count(sender) >= sent_before + copies,
                "every copy at the axis",
                timeout=600,
            )
        finally:
            recipient.service.process.send_signal(signal.SIGCONT)
    outcome = "delivered"
    refusals = [sender.outbox / "failed" / f"large-{n}-{copy}.error.txt" for copy in range(copies)]
    restarts = 0

    def settled() -> bool:
        died = any(service.process.poll() is not None for service in processes.values())
        done = len(sender.receipts()) - before + sum(refusal.is_file() for refusal in refusals)
        return died or done >= copies

    while True:
        try:
            wait_until(settled, "the 01 back at the sender", timeout=600)
        except AssertionError:
            outcome = "timed out"
            break
        dead = [name for name, service in processes.items() if service.process.poll() is not None]
        if not dead or restart is None or restarts >= RESTARTS or "axis" in dead:
            break
        for name in dead:  # the kernel killed it (OOM): start it again, as systemd would
            restarts += 1
            code = SENDER if name == "sender" else RECIPIENT
            processes[name] = restart(code)
    stop_profilers(profilers)
    for name, service in processes.items():
        if service.process.poll() is not None:
            outcome = f"{name} died (exit {service.process.returncode})"
    for refusal in refusals:
        if refusal.is_file():
            reason = refusal.read_text(encoding="utf-8").strip().split(": ", 1)[-1]
            outcome = f"refused: {reason[:70]}…"
    if restarts:
        outcome += f" ({restarts} restarts)"
        pids = {name: pid for name, pid in pids.items() if processes[name].process.pid == pid}
    alive = {name: pid for name, pid in pids.items() if processes[name].process.poll() is None}  # CPU of the first run
    result = {
        "size_mib": size_mib,
        "copies": copies,
        "outcome": outcome,
        "seconds_drop_to_01": round(time.time() - started, 2),
        "cpu_seconds": {name: round(cpu_seconds(pid) - cpu_before[name], 3) for name, pid in alive.items()},
        "peak_rss_growth_mib": {
            name: round((status_kib(pid, "VmHWM") - rss_before[name]) / 1024, 1) for name, pid in alive.items()
        }
        if resettable
        else None,
    }
    taken = event_time(sender.service, "intake_taken", started)
    sent = event_time(sender.service, "message_sent", started)
    listed = event_time(recipient.service, "message_listed", started)
    delivered = event_time(recipient.service, "document_delivered", started)
    if taken and sent:
        result["sender_seconds_taken_to_sent"] = round(sent - taken, 2)
    if listed and delivered:
        result["recipient_seconds_listed_to_delivered"] = round(delivered - listed, 2)
    return result


def label(result: dict) -> str:
    copies = result["copies"]
    return f"{result['size_mib']:g}" + (f"×{copies}" if copies > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 20, 100], help="attachment sizes in MiB")
    parser.add_argument("--memory-max", type=int, help="MiB: both gateways in a memory cgroup with this limit")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of every process, per size")
    parser.add_argument("--copies", type=int, default=1, help="documents of each size dropped at once")
    parser.add_argument(
        "--backlog", action="store_true", help="the recipient paused until every copy waits at the axis"
    )
    args = parser.parse_args()
    cgroup = MemoryCgroup(args.memory_max) if args.memory_max else None
    results = []
    try:
        with tempfile.TemporaryDirectory() as temp:
            province = build_province(Path(temp), [SENDER, RECIPIENT], timing="")
            try:
                for code in (SENDER, RECIPIENT):
                    province.start(code)
                    if cgroup:
                        cgroup.add(province.agencies[code].service.process.pid)
                time.sleep(2.0)

                def restart(code: str):
                    service = province.start(code).service
                    if cgroup:
                        cgroup.add(service.process.pid)
                    return service

                for n, size in enumerate(args.sizes):
                    results.append(
                        one(province, size, n, args.profile, restart if cgroup else None, args.copies, args.backlog)
                    )
                    if results[-1]["outcome"] != "delivered":
                        break
            finally:
                province.stop_all()
    finally:
        if cgroup:
            cgroup.close()
    limit = f", gateways limited to {args.memory_max} MiB" if args.memory_max else ""
    print(f"large attachments end to end{limit}")
    print(
        f"{'MiB':>6}{'drop→01 s':>10}{'send s':>8}{'deliver s':>10}"
        f"{'CPU s snd/axis/rcv':>22}{'peak MiB snd/axis/rcv':>24}  outcome"
    )
    for r in results:
        cpu = r["cpu_seconds"]
        peak = r["peak_rss_growth_mib"] or {}
        print(
            f"{label(r):>6}{r['seconds_drop_to_01']:>10}"
            f"{r.get('sender_seconds_taken_to_sent', '-'):>8}{r.get('recipient_seconds_listed_to_delivered', '-'):>10}"
            f"{'/'.join(str(cpu.get(k, '-')) for k in ('sender', 'axis', 'recipient')):>22}"
            f"{'/'.join(str(peak.get(k, '-')) for k in ('sender', 'axis', 'recipient')):>24}  {r['outcome']}"
        )
    if args.profile:
        for raw in sorted(args.profile.glob("*/*.txt")):
            print(f"\nprofile of {raw.stem}, {raw.parent.name} MiB (share of samples, inclusive):")
            for name, share in summarize(raw):
                print(f"  {share:5.1f} %  {name}")
    print(json.dumps({"benchmark": "large", "memory_max_mib": args.memory_max, "results": results}))


if __name__ == "__main__":
    main()
