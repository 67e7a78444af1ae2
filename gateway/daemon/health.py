"""`health`: what an admin or a monitoring system asks of an installation, with a verdict.

The verdict follows the Nagios plugin convention, which every monitoring system reads:
0 OK, 1 WARNING (a person should look today), 2 CRITICAL (documents are not moving),
3 UNKNOWN (health itself could not look: a configuration or permission error).
"""

from __future__ import annotations

import enum
import getpass
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.daemon.outgoing import Agency, Local, database_of
from gateway.daemon.registration import UNREGISTERED
from gateway.edxml.revocation import RevocationPolicy
from gateway.fsutil import lock_holder
from gateway.store import GatewayStore, Outgoing

CERTIFICATE_WARNING_DAYS = 30
CERTIFICATE_WARNED = "certificate_warned_at"  # meta: when certificate_expiring was last logged
CERTIFICATE_CRITICAL_DAYS = 7
QUEUED_TOO_LONG = 3600.0  # a document queued for an hour is not moving, whatever the reason
DELIVERY_FAILING = "delivery_failing"  # meta key: the last failure to write the inbox, "" once it works again


class Level(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Problem:
    level: Level
    text: str


def relaxed_checks(config: Config) -> list[str]:
    """What the configuration lets in that the defaults refuse: said at every start and by
    health for as long as it stays (a setting made for a test and forgotten)."""
    said = []
    if not config.signing.require_signatures:
        said.append("[signing] require_signatures = false: unsigned documents, and forged signatures, are delivered")
    if config.signing.revocation is RevocationPolicy.OFF:
        said.append('[signing] revocation = "off": documents signed with revoked certificates are delivered')
    if config.signing.allow_sha1:
        said.append("[signing] allow_sha1 = true: SHA-1 signatures, which can be forged, are accepted")
    return said


def check(config: Config) -> tuple[Level, dict[str, Any]]:
    if not database_of(config).is_file():  # looked at before anything is opened: health makes nothing
        text = f"the gateway has never run here (no database at {database_of(config)})"
        report = {"status": "CRITICAL", "healthy": False, "problems": [{"level": "CRITICAL", "text": text}]}
        return Level.CRITICAL, {**report, "agency": config.agency.code if config.agency else None}
    local = Local.open(config, looking=True)
    try:
        return _check(local)
    finally:
        local.store.close()


def _check(local: Local) -> tuple[Level, dict[str, Any]]:
    config, store = local.config, local.store
    now = time.time()
    counts = store.reports.counts()
    oldest_queued = counts.pop("oldest_queued_at", None)
    last_poll, last_push = store.meta("last_poll"), store.meta("last_push")
    certificate = local.identity.certificate
    days_left = (certificate.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
    failed = store.reports.failed()
    rejected = _rejected_folders(local)
    holder = lock_holder(config.paths.data_dir)
    problems: list[Problem] = []
    several = len(local.agencies) > 1

    def problem(level: Level, text: str, agency: str | None = None) -> None:
        """A problem, said with the hosted agency it belongs to when the installation hosts several."""
        problems.append(Problem(level, f"{agency}: {text}" if agency and several else text))

    if holder is None:
        problem(Level.CRITICAL, f"the gateway is not running (nothing holds {config.paths.data_dir / '.lock'})")
    stale_after = max(300.0, 10 * config.poll.interval)
    if last_poll is None or now - float(last_poll) > stale_after:
        problem(Level.CRITICAL, f"no successful poll of the axis for more than {int(stale_after)} s")
    failing = store.meta(DELIVERY_FAILING)
    if failing:
        detail = json.loads(failing)
        since = edxml.vietnam_iso(detail["since"])
        problem(Level.CRITICAL, f"delivering to the inbox fails since {since}: {detail['error']}")
    unregistered = json.loads(store.meta(UNREGISTERED) or "{}")
    for agency in local.agencies.values():
        if not agency.inbox.is_dir():
            problem(Level.CRITICAL, f"the inbox {agency.inbox} does not exist", agency.code)
        elif not os.access(agency.inbox, os.W_OK | os.X_OK):
            problem(Level.CRITICAL, f"the inbox {agency.inbox} is not writable by {getpass.getuser()}", agency.code)
        left = (agency.identity.certificate.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
        if left < CERTIFICATE_CRITICAL_DAYS:
            problem(Level.CRITICAL, f"the signing certificate expires in {left:.0f} days", agency.code)
        elif left < CERTIFICATE_WARNING_DAYS:
            problem(Level.WARNING, f"the signing certificate expires in {left:.0f} days", agency.code)
        if agency.code in unregistered:
            problem(
                Level.WARNING,
                f"not registered at the axis ({unregistered[agency.code]}): its documents wait",
                agency.code,
            )
        failed_here = [item for item in failed if (item.from_code or local.code) == agency.code]
        if failed_here:
            problem(
                Level.WARNING,
                f"{len(failed_here)} failed message(s): fix the cause and `retry`, or `abandon` them (listed below)",
                agency.code,
            )
        refused_here = rejected.get(agency.code, [])
        if refused_here:
            problem(
                Level.WARNING,
                f"{len(refused_here)} refused message(s) in {agency.inbox / '.rejected'}:"
                " read each reason.txt, then remove the folder",
                agency.code,
            )
    orphans = [item for item in failed if (item.from_code or local.code) not in local.agencies]
    if orphans:  # sent by an agency removed from [[hosted]] since: still this installation's to settle
        senders = ", ".join(sorted({item.from_code or "" for item in orphans}))
        problem(
            Level.WARNING,
            f"{len(orphans)} failed message(s) of {senders}, no longer hosted: `retry` or `abandon` them",
        )
    if oldest_queued is not None and now - oldest_queued > QUEUED_TOO_LONG:
        problem(Level.WARNING, f"a message has waited in the queue since {edxml.vietnam_iso(oldest_queued)}")
    for relaxed in relaxed_checks(config):
        problem(Level.WARNING, relaxed)
    level = max((p.level for p in problems), default=Level.OK)
    report = {
        "status": level.name,
        "healthy": level is Level.OK,
        "problems": [{"level": p.level.name, "text": p.text} for p in problems],
        "agency": local.code,
        "hosted": [code for code in local.agencies if code != local.code],
        "running_pid": holder,
        "queues": counts,
        "oldest_queued_at": edxml.vietnam_iso(oldest_queued),
        "last_poll": edxml.vietnam_iso(float(last_poll)) if last_poll else None,
        "last_push": edxml.vietnam_iso(float(last_push)) if last_push else None,
        "failed": [_failed(f, local.code) for f in failed],
        "rejected": [name for names in rejected.values() for name in names],
        "certificate_expires": edxml.vietnam_iso(certificate.not_valid_after_utc.timestamp()),
        "certificate_days_left": round(days_left, 1),
    }
    return level, report


def render_text(report: dict[str, Any]) -> str:
    lines = [f"{report['agency']}: {report['status']}"]
    lines += [f"  {p['level']}: {p['text']}" for p in report["problems"]]
    if "running_pid" not in report:  # the gateway has never run: nothing more to say
        return "\n".join(lines)
    running = f"running (pid {report['running_pid']})" if report["running_pid"] else "not running"
    lines.append(f"  {running}; last poll {report['last_poll'] or 'never'}, last push {report['last_push'] or 'never'}")
    lines.append(f"  oldest queued: {report['oldest_queued_at'] or 'nothing queued'}")
    lines.append(f"  certificate expires {report['certificate_expires']} ({report['certificate_days_left']} days)")
    for item in report["failed"]:
        lines.append(
            f"  failed {item['kind']} {item['document_id']} from {item['from']} (to {', '.join(item['to'])}):"
            f" {item['error']}"
        )
    for name in report["rejected"]:
        lines.append(f"  refused: {name}")
    lines += [f"  {key}: {value}" for key, value in sorted(report["queues"].items())]
    return "\n".join(lines)


def _failed(item: Outgoing, own: str) -> dict[str, Any]:
    return {
        "document_id": item.document_id,
        "from": item.from_code or own,
        "id": item.id,
        "kind": item.kind,
        "to": list(item.to_codes),
        "error": item.last_error,
    }


def _rejected_folders(local: Local) -> dict[str, list[str]]:
    """The refused messages kept in each hosted agency's inbox/.rejected, by agency code."""
    found: dict[str, list[str]] = {}
    for agency in local.agencies.values():
        try:
            names = sorted(p.name for p in (agency.inbox / ".rejected").iterdir() if not p.name.startswith("."))
        except OSError:
            continue
        if names:
            found[agency.code] = names
    return found


def warn_of_certificate_expiry(store: GatewayStore, agency: Agency, *, own: bool) -> None:
    """Once a day from CERTIFICATE_WARNING_DAYS before: a log line monitoring turns into a ticket."""
    certificate = agency.identity.certificate
    days_left = (certificate.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400
    warned = CERTIFICATE_WARNED if own else f"{CERTIFICATE_WARNED}:{agency.code}"
    last = float(store.meta(warned) or 0)
    if days_left < CERTIFICATE_WARNING_DAYS and time.time() - last >= 86400:
        agency.log.warning(
            "certificate_expiring",
            days_left=round(days_left, 1),
            expires=certificate.not_valid_after_utc.isoformat(),
            hint=f"ask the CA for a new certificate and set {agency.key}.key and {agency.key}.cert to it",
        )
        store.set_meta(warned, str(time.time()))
