"""End-to-end benchmark: drop folder at one gateway to inbox at another, and status 01 back.

    python bench/e2e.py              # 200 documents in a burst, then 100 at 10/s
    python bench/e2e.py --quick      # 50 in a burst, then 30 at 10/s

An axis and two gateways (UBND tỉnh Tiền Giang sending, Sở Nội vụ receiving) as real
processes on 127.0.0.1, with the test suite's short worker intervals (0.2 s). Each
document is a job folder with a 5 KB attachment. Latency is measured from the rename
into the drop folder to the inbox folder's completion, and to the 01 recorded at the
sender. Everything shares the machine's 2 cores.
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

from tests.e2e.conftest import build_province  # the test suite's province, reused as is

SENDER, RECIPIENT = "000.00.00.H58", "000.00.11.H58"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_batch(province, label: str, count: int, rate: float | None, seen_folders: set[str]) -> dict:
    dropped: dict[str, float] = {}
    start = time.time()
    for n in range(count):
        if rate:
            target = start + n / rate
            if target > time.time():
                time.sleep(target - time.time())
        name = f"{label}-{n:05d}"
        province.drop_job(
            SENDER,
            name,
            {
                "to": [RECIPIENT],
                "subject": f"Văn bản đo {label} {n}",
                "code_number": str(n),
                "code_notation": f"BENCH-{label}",
            },
            {"phu-luc.pdf": os.urandom(5 * 1024)},
        )
        dropped[f"{n}/BENCH-{label}"] = time.time()
    inbox = province.agencies[RECIPIENT].inbox
    delivered: dict[str, float] = {}
    arrived: dict[str, float] = {}
    deadline = time.time() + 300
    database = province.agencies[SENDER].folder / "var" / "gateway.sqlite3"
    while (len(delivered) < count or len(arrived) < count) and time.time() < deadline:
        for folder in inbox.iterdir():
            if folder.name.startswith(".") or folder.name in seen_folders:
                continue
            header = json.loads((folder / "document.json").read_text(encoding="utf-8"))
            seen_folders.add(folder.name)
            key = header["document_id"].split(",")[-1]
            if key in dropped:
                delivered[key] = (folder / "document.json").stat().st_mtime
        with sqlite3.connect(database, timeout=10) as db:
            for document_id, received_at in db.execute(
                "SELECT o.document_id, r.received_at FROM receipts r JOIN outgoing o ON o.id = r.outgoing_id"
                " WHERE r.status_code = '01'"
            ):
                key = document_id.split(",")[-1]
                if key in dropped:
                    arrived[key] = received_at
        time.sleep(0.05)
    elapsed = max(arrived.values()) - min(dropped.values())
    to_inbox = [delivered[k] - dropped[k] for k in delivered]
    to_receipt = [arrived[k] - dropped[k] for k in arrived]
    return {
        "batch": label,
        "documents": count,
        "offered_per_second": rate,
        "delivered": len(delivered),
        "receipts_01": len(arrived),
        "documents_per_second": round(count / elapsed, 1),
        "to_inbox_p50_s": round(statistics.median(to_inbox), 3),
        "to_inbox_p99_s": round(percentile(to_inbox, 0.99), 3),
        "to_01_p50_s": round(statistics.median(to_receipt), 3),
        "to_01_p99_s": round(percentile(to_receipt, 0.99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    burst, paced = (50, 30) if args.quick else (200, 100)
    with tempfile.TemporaryDirectory() as temp:
        province = build_province(Path(temp), [SENDER, RECIPIENT])
        try:
            for code in province.agencies:
                province.start(code)
            seen: set[str] = set()  # inbox folders already read, across batches
            results = [run_batch(province, "burst", burst, None, seen), run_batch(province, "paced", paced, 10.0, seen)]
        finally:
            province.stop_all()
    header = f"{'batch':<8}{'docs':>6}{'docs/s':>9}{'inbox p50':>11}{'inbox p99':>11}{'01 p50':>9}{'01 p99':>9}"
    print(header)
    for r in results:
        print(
            f"{r['batch']:<8}{r['documents']:>6}{r['documents_per_second']:>9}{r['to_inbox_p50_s']:>11}"
            f"{r['to_inbox_p99_s']:>11}{r['to_01_p50_s']:>9}{r['to_01_p99_s']:>9}"
        )
    print(json.dumps({"benchmark": "e2e", "results": results}))


if __name__ == "__main__":
    main()
