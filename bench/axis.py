"""Axis benchmark: sends, fetches and list latency with a province-sized directory.

    python bench/axis.py                 # 1,174 agencies, 100,000 stored deliveries
    python bench/axis.py --quick         # 1,174 agencies, 10,000 deliveries, fewer calls

A real axis process on 127.0.0.1; the state is pre-filled through the axis's own store
(one document file per stored document), then our client measures, 16 requests at a time.
Client and server share the 2 cores, so the figures are a floor for the server alone.
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

from gateway import edxml
from gateway.axis.store import AxisStore, NewDocument
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
    """Stored documents, 5 recipients each, written through the axis's own store."""
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
            results = asyncio.run(measure(f"http://127.0.0.1:{port}", config_path, codes, calls))
        finally:
            process.terminate()
            process.wait(15)
    summary = {
        "benchmark": "axis",
        "agencies": len(codes) + 1,
        "stored_deliveries": deliveries,
        "prefill_seconds": round(prefill_seconds, 1),
        "results": results,
    }
    print(f"{'operation':<14}{'calls':>7}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, figures in results.items():
        print(
            f"{name:<14}{figures['calls']:>7}{figures['per_second']:>9}{figures['p50_ms']:>9}"
            f"{figures['p95_ms']:>9}{figures['p99_ms']:>9}"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
