"""`edxml-gateway bridge --config axis.toml`: how a provincial axis's bridge to its upstream
stands, with a verdict monitoring reads (Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

It reads the axis's database read-only, beside the running axis (SQLite WAL allows it), and
writes nothing: run as root or as the axis's account, it leaves no file behind.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from gateway import edxml
from gateway.axis.bridge import DIRECTORY_AT, LAST_CONTACT
from gateway.axis.config import AxisConfig
from gateway.daemon.health import Level
from gateway.errors import UsageError
from gateway.fsutil import lock_holder

QUEUED_TOO_LONG = 600.0  # a forward waiting ten minutes: the upstream is not taking them


def check(config: AxisConfig) -> tuple[Level, dict[str, Any]]:
    if config.upstream is None:
        raise UsageError(f"{config.path} has no [upstream]: this axis has no bridge", where=str(config.path))
    path = config.data_dir / "axis.sqlite3"
    if not path.is_file():
        text = f"the axis has never run here (no database at {path})"
        return Level.CRITICAL, {"status": "CRITICAL", "problems": [{"level": "CRITICAL", "text": text}]}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        figures = _figures(db)
    finally:
        db.close()
    now = time.time()
    holder = lock_holder(config.data_dir)
    problems: list[tuple[Level, str]] = []
    if holder is None:
        problems.append((Level.CRITICAL, f"the axis is not running (nothing holds {config.data_dir / '.lock'})"))
    stale_after = max(300.0, 10 * config.upstream.poll_interval)
    contact = figures["last_contact"]
    if contact is None or now - contact > stale_after:
        problems.append(
            (Level.CRITICAL, f"no answer from the upstream {config.upstream.url} for over {int(stale_after)} s")
        )
    oldest = figures["oldest_queued_at"]
    if oldest is not None and now - oldest > QUEUED_TOO_LONG:
        waiting = figures["forwards_queued"]
        since = edxml.vietnam_iso(oldest)
        problems.append((Level.WARNING, f"{waiting} message(s) wait for the upstream, the oldest since {since}"))
    if figures["forwards_failed"]:
        refused = figures["forwards_failed"]
        problems.append(
            (Level.WARNING, f"{refused} message(s) the upstream refused for good (forward_failed in the log)")
        )
    level = max((p[0] for p in problems), default=Level.OK)
    report = {
        "status": level.name,
        "upstream": config.upstream.url,
        "problems": [{"level": p[0].name, "text": p[1]} for p in problems],
        "running_pid": holder,
        "last_contact": edxml.vietnam_iso(contact) if contact else None,
        "directory_read": edxml.vietnam_iso(figures["directory_at"]) if figures["directory_at"] else None,
        "national_agencies": figures["national_agencies"],
        "forwards_queued": figures["forwards_queued"],
        "oldest_queued_at": edxml.vietnam_iso(oldest) if oldest else None,
        "forwards_sent": figures["forwards_sent"],
        "forwards_failed": figures["forwards_failed"],
        "inbound": figures["inbound"],
        "inbound_unacknowledged": figures["inbound_unacknowledged"],
    }
    return level, report


def _figures(db: sqlite3.Connection) -> dict[str, Any]:
    def one(sql: str, *args: Any) -> Any:
        return db.execute(sql, args).fetchone()[0]

    def meta(key: str) -> float | None:
        row = db.execute("SELECT value FROM bridge_meta WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else None

    try:
        return {
            "last_contact": meta(LAST_CONTACT),
            "directory_at": meta(DIRECTORY_AT),
            "national_agencies": one("SELECT count(*) FROM upstream_agencies"),
            "forwards_queued": one("SELECT count(*) FROM forwards WHERE state = 'queued'"),
            "oldest_queued_at": one("SELECT min(created_at) FROM forwards WHERE state = 'queued'"),
            "forwards_sent": one("SELECT count(*) FROM forwards WHERE state IN ('sent', 'settled')"),
            "forwards_failed": one("SELECT count(*) FROM forwards WHERE state = 'failed'"),
            "inbound": one("SELECT count(*) FROM inbound"),
            "inbound_unacknowledged": one("SELECT count(*) FROM inbound WHERE acked = 0"),
        }
    except sqlite3.OperationalError as exc:  # a database from before the bridge: the axis migrates it at start
        raise UsageError(f"the axis database has no bridge tables yet ({exc}): start the axis once") from None


def render_text(report: dict[str, Any]) -> str:
    lines = [f"bridge to {report.get('upstream', '?')}: {report['status']}"]
    lines += [f"  {p['level']}: {p['text']}" for p in report["problems"]]
    if "forwards_queued" not in report:
        return "\n".join(lines)
    lines.append(f"  last answer from the upstream {report['last_contact'] or 'never'}")
    lines.append(
        f"  national directory read {report['directory_read'] or 'never'} ({report['national_agencies']} agencies)"
    )
    lines.append(
        f"  forwarded {report['forwards_sent']}, waiting {report['forwards_queued']}"
        f" (oldest {report['oldest_queued_at'] or '-'}), refused {report['forwards_failed']}"
    )
    lines.append(
        f"  received from the upstream {report['inbound']} ({report['inbound_unacknowledged']} not yet acknowledged)"
    )
    return "\n".join(lines)
