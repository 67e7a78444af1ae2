"""One installation hosting many agencies: start-up, idle cost, and one document to 50 of them.

    python bench/hosted.py                 # 300 hosted agencies, 30 s idle, a document to 50
    python bench/hosted.py --hosted 100 --idle 10 --fan-out 20

An axis and two installations as real processes on 127.0.0.1, on the packaged default
configuration (long-poll, 0.2 s intake, 300 s housekeeping): the province, and a huyện
hosting --hosted agencies ([[hosted]], each with its own key, certificate, drop folder
and inbox; codes 000.01.31.H58 … under the huyện). The axis declares only the two
installations: the huyện registers its hosted agencies at its first start.

Measured:
- start-up: from the process's spawn to `gateway_started`, and to `agencies_registered`
  (first start: every hosted agency registered) or to the directory read (second start);
- idle: CPU of the huyện's process with no traffic, in % of one core, over --idle seconds;
- fan-out: from a job dropped at the province to --fan-out recipients at the huyện, until
  every inbox holds it (document.json written) and until the province has recorded every
  recipient's signed 01.
Printed as a table and as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.processes import Service
from tests.e2e.province import build_province, wait_until

TICKS = os.sysconf("SC_CLK_TCK")
PROVINCE, DISTRICT = "000.00.00.H58", "000.00.31.H58"


def hosted_codes(count: int) -> dict[str, str]:
    """``count`` codes under the huyện: its level-3 units (xã, phòng) 01-99, then level 4 under them."""
    codes = {}
    for index in range(count):
        code = f"{index // 99:03d}.{index % 99 + 1:02d}.31.H58"
        codes[code] = f"Đơn vị {index + 1} huyện Cái Bè"
    return codes


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(province, code: str, until: str) -> tuple[Service, float, float]:
    """The installation started; seconds to `gateway_started` and to the event ``until``."""
    agency = province.agencies[code]
    began = time.monotonic()
    service = Service(
        ["run", "--config", str(agency.config)], cwd=agency.folder, log_path=agency.folder / "gateway.log"
    )
    service.wait_for(lambda e: e.get("event") == "gateway_started", f"{code} to start", timeout=120)
    started = time.monotonic() - began
    service.wait_for(lambda e: e.get("event") == until, f"{code}: {until}", timeout=120)
    agency.service = service
    return service, started, time.monotonic() - began


def idle_percent(pid: int, seconds: float) -> float:
    before, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round(100 * (cpu_seconds(pid) - before) / (time.monotonic() - began), 2)


def fan_out(province, recipients: list[str]) -> dict[str, float]:
    began = time.monotonic()
    province.drop_job(
        PROVINCE,
        "fan-out",
        {"to": recipients, "subject": "Công văn gửi các đơn vị", "code_number": "1", "code_notation": "UBND-VP"},
        {"cong-van.txt": b"x" * 5000},
    )
    inboxes = [province.hosted[code].inbox for code in recipients]

    def everywhere() -> bool:
        return all(any((folder / "document.json").is_file() for folder in inbox.iterdir()) for inbox in inboxes)

    wait_until(everywhere, "every inbox", timeout=120)
    delivered = time.monotonic() - began
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) >= len(recipients), "every 01", timeout=120)
    return {"delivered_s": round(delivered, 2), "all_01_back_s": round(time.monotonic() - began, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosted", type=int, default=300, help="agencies the huyện hosts (default 300)")
    parser.add_argument("--fan-out", type=int, default=50, help="recipients of the one document (default 50)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of no traffic measured (default 30)")
    parser.add_argument("--workdir", type=Path, help="where the province is made (default: the system's temp folder)")
    args = parser.parse_args()
    if not 0 < args.fan_out <= args.hosted:
        parser.error("--fan-out must be between 1 and --hosted")
    with tempfile.TemporaryDirectory(dir=args.workdir) as temp:
        made = time.monotonic()
        hosted = hosted_codes(args.hosted)
        province = build_province(Path(temp), [PROVINCE, DISTRICT], timing="", hosted={DISTRICT: hosted})
        setup = time.monotonic() - made
        try:
            district, first_started, first_registered = start(province, DISTRICT, "agencies_registered")
            district.stop()
            district, started, _ = start(province, DISTRICT, "gateway_started")
            start(province, PROVINCE, "gateway_started")
            time.sleep(2.0)  # the first long-polls settle
            idle = idle_percent(district.process.pid, args.idle) if args.idle > 0 else None
            before = cpu_seconds(district.process.pid)
            fanned = fan_out(province, list(hosted)[: args.fan_out])
            fan_cpu = cpu_seconds(district.process.pid) - before
            rss = int(Path(f"/proc/{district.process.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        finally:
            province.stop_all()
    result = {
        "hosted": args.hosted,
        "setup_s": round(setup, 1),
        "first_start_s": round(first_started, 2),
        "first_start_registered_s": round(first_registered, 2),
        "restart_s": round(started, 2),
        "idle_cpu_percent": idle,
        "idle_seconds": args.idle,
        "fan_out": args.fan_out,
        **fanned,
        "fan_out_cpu_ms_huyen": round(1000 * fan_cpu, 1),
        "rss_mb_huyen": round(rss / 1024, 1),
    }
    print(f"{'hosted agencies':<40}{args.hosted}")
    print(f"{'province built (keys, certificates)':<40}{result['setup_s']} s")
    print(f"{'first start: started / all registered':<40}{result['first_start_s']} s / {first_registered:.2f} s")
    print(f"{'second start: started':<40}{result['restart_s']} s")
    print(f"{'idle CPU of the installation':<40}{idle} % of a core over {args.idle:g} s")
    print(f"{f'a document to {args.fan_out}: in every inbox':<40}{result['delivered_s']} s")
    print(f"{f'  and {args.fan_out} signed 01 back at the sender':<40}{result['all_01_back_s']} s")
    print(f"{'  CPU of the installation for it':<40}{result['fan_out_cpu_ms_huyen']} ms")
    print(f"{'RSS of the installation':<40}{result['rss_mb_huyen']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
