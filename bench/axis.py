"""Axis benchmark: a province-sized directory, its capacity, and its latency under load.

    python bench/axis.py                 # 1,174 agencies, 100,000 stored deliveries
    python bench/axis.py --quick         # 1,174 agencies, 10,000 deliveries, shorter phases
    python bench/axis.py --profile DIR   # and a py-spy profile of the axis during the load phase

A real axis process on 127.0.0.1; the state is pre-filled through the axis's own store
(one document file per stored document, 99 % of the deliveries already acknowledged, as on
a running axis), then, in one client process sharing the machine's 2 cores with the axis:

1. capacity: sends, lists, fetches and acknowledgements, 16 requests at a time;
2. idle: every one of the 1,174 agencies long-polls for its own documents (``to`` = its
   code), and the axis's CPU is read from /proc while nothing happens;
3. load: documents sent at 100 per second to random agencies while those long-polls go on
   (each listener fetches and acknowledges what it is given, then listens again) and plain
   lists (45 systems, at 50 per second in all) are timed: list latency, the delay from an
   accepted send to the recipient's long-poll answer, and the axis's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.e2e import start_profilers, stop_profilers, summarize
from gateway import edxml
from gateway.axis.records import NewDocument
from gateway.axis.store import AxisStore
from gateway.axis_client import AxisClient

AGENCIES = 1174
SYSTEMS = 45  # Tiền Giang: 45 connected units
SENDER = "000.00.00.G22"


def agency_codes() -> list[str]:
    codes = []
    for district in range(1, 41):
        for unit in range(0, 30):
            codes.append(f"{unit:03d}.00.{district:02d}.H58")
    return codes[: AGENCIES - 1]


def write_config(folder: Path, codes: list[str]) -> Path:
    lines = ["[server]", 'host = "127.0.0.1"', "port = 0", 'data_dir = "axis-data"', f'code = "{SENDER}"']
    lines += ["[[systems]]", 'id = "sender"', 'secret = "bench-secret-of-the-sender"', f'agencies = ["{SENDER}"]']
    per_system = -(-len(codes) // SYSTEMS)
    for index in range(SYSTEMS):
        chunk = codes[index * per_system : (index + 1) * per_system]
        lines += ["[[systems]]", f'id = "sys-{index}"', f'secret = "bench-secret-of-system-{index}"']
        lines += ["agencies = [" + ", ".join(f'"{c}"' for c in chunk) + "]"]
    lines += ["[[agencies]]", f'code = "{SENDER}"', 'name = "Văn phòng Chính phủ"']
    for code in codes:
        lines += ["[[agencies]]", f'code = "{code}"', f'name = "Đơn vị {code}"']
    path = folder / "axis.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_document(to: str, n: int) -> bytes:
    document = edxml.Document(
        sender=edxml.Organization(edxml.AgencyCode(SENDER), organ_name="Văn phòng Chính phủ"),
        to=(edxml.Organization(edxml.AgencyCode(to), organ_name="Đơn vị"),),
        subject="Về việc đo hiệu năng của trục",
        document_id=f"{SENDER},2026/11/25,{n}/VPCP",
        attachments=(edxml.Attachment("a", "a.pdf", os.urandom(3000), content_type="application/pdf"),),
    )
    return edxml.build(document)


def prefill(folder: Path, codes: list[str], deliveries: int) -> None:
    """Stored documents, 5 recipients each, written through the axis's own store; all but
    1 % acknowledged (done), as on an axis whose gateways keep up."""
    from gateway.axis.config import load

    config = load(folder / "axis.toml")
    store = AxisStore(config.data_dir)
    owner = {code: s.id for s in config.systems for code in s.agencies}
    store.seed_agencies((a.code, a.name, a.mail, owner.get(a.code), a.locked) for a in config.agencies)
    body = sample_document(codes[0], 0)
    rng = random.Random(1)
    for n in range(deliveries // 5):
        recipients = tuple(sorted(rng.sample(codes, 5)))
        sender_doc_id, path = store.new_document_path()
        path.write_bytes(body)
        store.record_document(
            sender_doc_id,
            NewDocument(
                "edoc",
                "sender",
                SENDER,
                f"prefill|{n}",
                f"prefill-{n}",
                "Prefilled",
                "VPCP",
                "",
                "0",
                len(body),
                recipients,
            ),
        )
    store.connection.execute("UPDATE deliveries SET state = 'done', done_at = updated_at WHERE rowid % 100 != 0")
    store.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(url: str, config_path: Path, codes: list[str], calls: int) -> dict:
    from gateway.axis.config import load

    config = load(config_path)
    systems = {s.id: s for s in config.systems}
    rng = random.Random(2)
    results: dict = {}

    async def timed(coroutines) -> tuple[float, list[float]]:
        latencies: list[float] = []
        semaphore = asyncio.Semaphore(16)

        async def one(coroutine):
            async with semaphore:
                start = time.perf_counter()
                await coroutine
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(c) for c in coroutines))
        return time.perf_counter() - start, latencies

    async with AxisClient(url, "sender", systems["sender"].secret) as sender:
        documents = [sample_document(rng.choice(codes), 10_000_000 + n) for n in range(calls)]
        elapsed, latencies = await timed(sender.send_edoc(d, message_type="edoc", from_code=SENDER) for d in documents)
        results["send"] = _figures(calls, elapsed, latencies)

    clients = {sid: AxisClient(url, sid, s.secret) for sid, s in systems.items() if sid != "sender"}
    try:
        picks = [rng.choice(list(clients)) for _ in range(calls)]
        listed: list[tuple[str, str]] = []

        async def list_one(system_id: str) -> None:
            items = await clients[system_id].received_list()
            listed.extend((system_id, item.doc_id) for item in items[:3])

        elapsed, latencies = await timed(list_one(s) for s in picks)
        results["list"] = _figures(calls, elapsed, latencies)
        fetches = listed[:calls]
        elapsed, latencies = await timed(clients[s].get_edoc(d) for s, d in fetches)
        results["fetch"] = _figures(len(fetches), elapsed, latencies)
        elapsed, latencies = await timed(clients[s].update_status(d, "done") for s, d in fetches)
        results["acknowledge"] = _figures(len(fetches), elapsed, latencies)
    finally:
        for c in clients.values():
            await c.close()
    return results


def axis_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def scale(
    url: str, config_path: Path, codes: list[str], pid: int, seconds: float, profile: Path | None = None
) -> dict:
    """Idle long-polls of every agency, then 100 documents per second with timed lists."""
    from gateway.axis.config import load

    config = load(config_path)
    systems = {s.id: s for s in config.systems}
    owner = {code: s.id for s in config.systems for code in s.agencies if s.id != "sender"}
    clients = {sid: AxisClient(url, sid, s.secret, timeout=30) for sid, s in systems.items()}
    sent_at: dict[str, list[float]] = {}
    delays: list[float] = []
    stop = asyncio.Event()
    listening = 0

    async def listener(code: str) -> None:
        nonlocal listening
        client = clients[owner[code]]
        listening += 1
        while not stop.is_set():
            try:
                items = await client.received_list("edoc", to=code, wait=20)
            except Exception:
                await asyncio.sleep(0.5)
                continue
            now = time.perf_counter()
            for item in items:
                if sent_at.get(code):
                    delays.append(now - sent_at[code].pop(0))
                await client.get_edoc(item.doc_id)
                await client.update_status(item.doc_id, "done")

    try:
        for client in clients.values():
            await client.count()  # learn the long-poll announcement
        # the 1 % left pending are drained first, so that the long-polls then wait
        for code in codes:
            for item in await clients[owner[code]].received_list("edoc", to=code):
                await clients[owner[code]].update_status(item.doc_id, "done")
        tasks = [asyncio.create_task(listener(code)) for code in codes]
        await asyncio.sleep(5.0)  # every listener connected and waiting
        idle_start, cpu_start = time.perf_counter(), axis_cpu(pid)
        await asyncio.sleep(min(seconds, 10.0))
        idle_cpu = (axis_cpu(pid) - cpu_start) / (time.perf_counter() - idle_start)

        rng = random.Random(3)
        sender = clients["sender"]
        list_latencies: list[float] = []

        async def send_one(n: int) -> None:
            to = rng.choice(codes)
            await sender.send_edoc(sample_document(to, 20_000_000 + n), message_type="edoc", from_code=SENDER)
            sent_at.setdefault(to, []).append(time.perf_counter())

        async def plain_lists() -> None:
            plain = [c for sid, c in clients.items() if sid != "sender"]
            while not stop.is_set():
                started = time.perf_counter()
                await rng.choice(plain).received_list("edoc")
                list_latencies.append(time.perf_counter() - started)
                await asyncio.sleep(max(0.0, 0.02 - (time.perf_counter() - started)))

        lister = asyncio.create_task(plain_lists())
        profilers = start_profilers({"axis": pid}, profile)
        load_start, cpu_start, own_start = time.perf_counter(), axis_cpu(pid), time.process_time()
        sends = []
        count = int(100 * seconds)
        for n in range(count):
            wait = load_start + n / 100 - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            sends.append(asyncio.create_task(send_one(n)))
        await asyncio.gather(*sends)
        offered_seconds = time.perf_counter() - load_start
        deadline = time.perf_counter() + 30
        while len(delays) < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        load_cpu = (axis_cpu(pid) - cpu_start) / (time.perf_counter() - load_start)
        own_cpu = (time.process_time() - own_start) / (time.perf_counter() - load_start)
        stop_profilers(profilers)
        stop.set()
        lister.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(lister, *tasks, return_exceptions=True)
    finally:
        for client in clients.values():
            await client.close()
    return {
        "long_polling_agencies": listening,
        "idle_axis_cpu_share_of_a_core": round(idle_cpu, 4),
        "documents_sent": count,
        "sent_per_second": round(count / offered_seconds, 1),
        "delivered_by_long_poll": len(delays),
        "send_to_long_poll_answer": _figures(len(delays), 1.0, delays) if delays else None,
        "plain_list_under_load": _figures(len(list_latencies), 1.0, list_latencies),
        "load_axis_cpu_share_of_a_core": round(load_cpu, 3),
        "load_client_cpu_share_of_a_core": round(own_cpu, 3),
    }


def _figures(count: int, elapsed: float, latencies: list[float]) -> dict:
    return {
        "calls": count,
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


def wait_for_port(log_path: Path, process: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"axis_listening"' in line:
                return int(json.loads(line)["port"])
        if process.poll() is not None:
            raise SystemExit(f"the axis exited: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise SystemExit("the axis did not start listening")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", type=Path, help="folder for a py-spy profile of the axis under load")
    args = parser.parse_args()
    deliveries, calls = (10_000, 300) if args.quick else (100_000, 1000)
    codes = agency_codes()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        config_path = write_config(folder, codes)
        start = time.perf_counter()
        prefill(folder, codes, deliveries)
        prefill_seconds = time.perf_counter() - start
        log_path = folder / "axis.log"
        with log_path.open("wb") as log:  # a file, not a pipe: an undrained pipe would stall the axis
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "axis", "--config", str(config_path)],
                stderr=log,
                stdout=subprocess.DEVNULL,
                cwd=folder,
            )
        try:
            port = wait_for_port(log_path, process)
            url = f"http://127.0.0.1:{port}"
            results = asyncio.run(measure(url, config_path, codes, calls))
            seconds = 10.0 if args.quick else 30.0
            under_load = asyncio.run(scale(url, config_path, codes, process.pid, seconds, args.profile))
        finally:
            process.terminate()
            process.wait(15)
    summary = {
        "benchmark": "axis",
        "agencies": len(codes) + 1,
        "stored_deliveries": deliveries,
        "prefill_seconds": round(prefill_seconds, 1),
        "results": results,
        "scale": under_load,
    }
    print(f"{'operation':<14}{'calls':>7}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, figures in results.items():
        print(
            f"{name:<14}{figures['calls']:>7}{figures['per_second']:>9}{figures['p50_ms']:>9}"
            f"{figures['p95_ms']:>9}{figures['p99_ms']:>9}"
        )
    print(
        f"\n{under_load['long_polling_agencies']} agencies long-polling: the axis uses "
        f"{100 * under_load['idle_axis_cpu_share_of_a_core']:.2f} % of a core while nothing happens"
    )
    answer, plain = under_load["send_to_long_poll_answer"] or {}, under_load["plain_list_under_load"]
    print(
        f"{under_load['documents_sent']} documents at {under_load['sent_per_second']}/s: "
        f"{under_load['delivered_by_long_poll']} answered to a long-poll, send → answer p50 {answer.get('p50_ms')} ms, "
        f"p99 {answer.get('p99_ms')} ms; plain lists meanwhile p50 {plain['p50_ms']} ms, p99 {plain['p99_ms']} ms; "
        f"the axis used {100 * under_load['load_axis_cpu_share_of_a_core']:.0f} % of a core, "
        f"this client {100 * under_load['load_client_cpu_share_of_a_core']:.0f} %"
    )
    if args.profile:
        print("\nprofile of the axis under load (share of samples, inclusive):")
        for name, share in summarize(args.profile / "axis.txt", top=30):
            print(f"  {share:5.1f} %  {name}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
