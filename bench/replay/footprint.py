"""What a replay leaves on disk: the bytes its documents cost, and the errors its processes logged."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

ERRORS = (b'"level": "error"', b'"level": "critical"')  # critical: an exception no handler caught


def disk_bytes(root: Path) -> tuple[int, int]:
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


def errors_logged(root: Path) -> Counter[str]:
    """Error lines in the logs of the province's processes, by event. A clean replay has none:
    its ledger counts what arrived, and an error on the way (a message given up, a retry run
    out) can hide behind a second copy that made it."""
    found: Counter[str] = Counter()
    for log in root.rglob("*.log"):
        with log.open("rb") as source:
            for line in source:
                if any(level in line for level in ERRORS):
                    try:
                        found[json.loads(line).get("event", "?")] += 1
                    except ValueError:
                        found["(not JSON)"] += 1
    return found
