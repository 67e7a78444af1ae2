"""Across the bridge: documents from the province to the Government Office and back, through a
provincial axis bridged to the national one.

    python bench/bridge.py               # 300 documents each way
    python bench/bridge.py --docs 100

Real processes on 127.0.0.1 (tests/axis/country.py): the national axis with the Government
Office's gateway, Tiền Giang's provincial axis with the province's gateway, the test suite's
short worker intervals. Each document (a 5 KB attachment) is dropped as a job folder at one
end and ends when its signed 01 is recorded back at its sender, having crossed the bridge
twice (the document one way, its 01 the other). Printed: documents per second from the
first drop to the last 01, and CPU ms per document of each process (user + system, from
/proc), as a table and one JSON line.
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

from tests.axis.country import MINISTRY, PROVINCE, build_country
from tests.e2e.province import free_port, wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300, help="documents each way (default 300)")
    parser.add_argument("--workdir", type=Path, help="where the country is made (default: the system's temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as temp:
        country = build_country(Path(temp), national_port=free_port(), provincial_port=free_port())
        try:
            country.start_national()
            country.start_provincial()
            country.provincial.service.wait_for(lambda e: e.get("event") == "registered_upstream", "registration")
            for code in (PROVINCE, MINISTRY):
                country.start(code)
            time.sleep(2.0)
            processes = {
                "national axis": country.axis.service.process.pid,
                "provincial axis": country.provincial.service.process.pid,
                "province gateway": country.agencies[PROVINCE].service.process.pid,
                "ministry gateway": country.agencies[MINISTRY].service.process.pid,
            }
            before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            began = time.monotonic()
            for n in range(args.docs):
                for sender, recipient, way in ((PROVINCE, MINISTRY, "up"), (MINISTRY, PROVINCE, "down")):
                    job = {"to": [recipient], "subject": f"Văn bản {way} {n}", "code_number": str(n + 1),
                           "code_notation": way.upper()}  # fmt: skip
                    country.drop_job(sender, f"{way}-{n:05d}", job, {"van-ban.txt": b"x" * 5000})
            province, ministry = country.agencies[PROVINCE], country.agencies[MINISTRY]
            wait_until(
                lambda: len(province.receipts()) >= args.docs and len(ministry.receipts()) >= args.docs,
                "every 01 back at its sender",
                timeout=max(120.0, args.docs * 2.0),
            )
            elapsed = time.monotonic() - began
            spent = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
        finally:
            country.stop_all()
    documents = 2 * args.docs
    result = {
        "documents": documents,
        "seconds": round(elapsed, 1),
        "documents_per_second": round(documents / elapsed, 1),
        "cpu_ms_per_document": {name: round(1000 * seconds / documents, 2) for name, seconds in spent.items()},
        "cpu_ms_per_document_all": round(1000 * sum(spent.values()) / documents, 2),
    }
    print(f"{'documents (half each way)':<42}{documents}")
    print(f"{'first drop to last 01':<42}{result['seconds']} s")
    print(f"{'documents per second':<42}{result['documents_per_second']}")
    for name, ms in result["cpu_ms_per_document"].items():
        print(f"{'CPU ms per document, ' + name:<42}{ms}")
    print(f"{'CPU ms per document, all':<42}{result['cpu_ms_per_document_all']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
