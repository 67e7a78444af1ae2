"""The quarterly exchange report (báo cáo tình hình gửi, nhận văn bản điện tử).

Counted from each gateway's own records, by the document's own time: the timestamp of its
sender's first TraceHeader (Vietnam wall-clock time, as edXML writes it), else its
promulgation date. A period is [from 00:00, to + 1 day 00:00) in Asia/Ho_Chi_Minh. A
document sent to five recipients counts once as sent (by its sender) and once as received
by each receiving agency; a province's report is the sum of its agencies' reports.

Sent: total, electronic only, with a paper copy (Bussiness/Paper = 1). Received: total,
digitised from paper (MessageHeader/ApplicationType "digitized-from-paper", set by the
sender's document.json flag "digitized"), electronic only. Statuses: received documents
accepted (03) within 1 and within 3 working days (Monday-Friday; public holidays are not
known to the gateway), finished (06); refusals with their reasons, both ways; recalls.
Received documents whose PDF attachments all carried valid signatures when they arrived
(signed, intact, covering the whole file, trusted, not revoked), and those with a PDF that did
not; documents without a PDF, or received before the gateway checked PDFs, are in neither.
Peer levels: ministry (central bodies: codes whose top letter is not H or K), province
(level 1 of H/K), district (level 2: districts and provincial departments alike), commune
(level 3 and below), other (identifiers outside QĐ 20).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from gateway.edxml import VIETNAM, AgencyCode
from gateway.errors import UsageError
from gateway.store import GatewayStore
from gateway.store.reports import Agencies
from gateway.vxp.vocabulary import MessageType

LEVELS = ("ministry", "province", "district", "commune", "other")


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @classmethod
    def quarter(cls, text: str) -> Period:
        match = re.fullmatch(r"(\d{4})Q([1-4])", text.strip(), re.ASCII)
        if match is None:
            raise UsageError(f"--quarter {text!r} is not of the form 2023Q3")
        year, quarter = int(match.group(1)), int(match.group(2))
        first = date(year, 3 * quarter - 2, 1)
        next_first = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return cls(first, next_first - timedelta(days=1))

    @property
    def start(self) -> str:
        return f"{self.first.isoformat()}T00:00:00"

    @property
    def end(self) -> str:
        """Exclusive: the first instant after the period."""
        return f"{(self.last + timedelta(days=1)).isoformat()}T00:00:00"


@dataclass
class Report:
    agencies: list[tuple[str, str]] = field(default_factory=list)
    sent: int = 0
    sent_with_paper: int = 0
    received: int = 0
    received_digitized: int = 0
    received_pdf_signed: int = 0  # every PDF it carried validly signed (checked on arrival)
    received_pdf_not_signed: int = 0  # a PDF unsigned, altered, untrusted or revoked
    accepted_within_1_working_day: int = 0
    accepted_within_3_working_days: int = 0
    finished: int = 0
    refused_by_us: Counter = field(default_factory=Counter)
    refused_by_recipients: Counter = field(default_factory=Counter)
    recalls_sent: int = 0
    recalls_received: int = 0
    sent_by_level: Counter = field(default_factory=Counter)
    received_by_level: Counter = field(default_factory=Counter)
    weekly_sent: Counter = field(default_factory=Counter)
    weekly_received: Counter = field(default_factory=Counter)

    def add(self, other: Report) -> None:
        for name, value in vars(other).items():
            if isinstance(value, Counter):
                getattr(self, name).update(value)
            elif isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


def level_of(code: str) -> str:
    agency = AgencyCode(code)
    if not agency.is_qd20:
        return "other"
    if agency.top[0] not in "HK":
        return "ministry"
    return {1: "province", 2: "district"}.get(agency.level, "commune")


def add_working_days(moment: datetime, days: int) -> datetime:
    result = moment
    while days > 0:
        result += timedelta(days=1)
        if result.weekday() < 5:
            days -= 1
    return result


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, VIETNAM).replace(tzinfo=None)


def _epoch(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=VIETNAM).timestamp()


def _week(text: str) -> str:
    moment = datetime.fromisoformat(text)
    monday = moment.date() - timedelta(days=moment.weekday())
    return monday.isoformat()


def agency_report(
    store: GatewayStore, agencies: list[tuple[str, str]], period: Period, *, own: str | None = None
) -> Report:
    """The report of an installation's record for ``agencies`` ((code, name) of hosted agencies;
    ``own``, the installation's own code, defaults to the first): what each of them sent and
    received, each counted once."""
    own = own or agencies[0][0]
    report = Report(agencies=list(agencies))
    chosen = Agencies(own, frozenset(code for code, _ in agencies))
    sent = store.reports.sent_between(period.start, period.end, chosen)
    for item in sent:
        report.sent += 1
        report.sent_with_paper += int(bool(item.paper))
        for level in {level_of(c) for c in item.to_codes}:
            report.sent_by_level[level] += 1
        report.weekly_sent[_week(item.document_time or period.start)] += 1
        for receipt in store.outgoing.receipts_for(item.id):
            if receipt.status_code == "02":
                report.refused_by_recipients[receipt.description or "(no reason given)"] += 1
    received = store.reports.received_between(period.start, period.end, chosen)
    for row in received:
        report.received += 1
        report.received_digitized += int(bool(row.digitized))
        report.received_pdf_signed += int(row.pdf_signed == 1)
        report.received_pdf_not_signed += int(row.pdf_signed == 0)
        report.received_by_level[level_of(row.from_code)] += 1
        report.weekly_received[_week(row.document_time or period.start)] += 1
    delivered_at = {row.axis_doc_id: _local(row.finished_at or row.listed_at) for row in received}
    # refused on arrival (no clerk saw them): counted with the clerks' refusals, as the sender's
    # report counts both under "refused by recipients"
    bounds = (_epoch(period.start), _epoch(period.end))
    rejected = [row.axis_doc_id for row in store.reports.rejected_between(*bounds, chosen)]
    accepted: dict[str, datetime] = {}
    finished: set[str] = set()  # a document counts once, whatever was said of it twice
    refused: dict[str, str] = {}
    for status in store.reports.statuses_answering([*delivered_at, *rejected]):
        code_sent = status.status_code
        if code_sent == "03":
            accepted[status.answers or ""] = min(
                accepted.get(status.answers or "", datetime.max), _local(status.created_at)
            )
        elif code_sent == "06":
            finished.add(status.answers or "")
        elif code_sent == "02":
            refused.setdefault(status.answers or "", status.subject or "(no reason given)")
    report.finished = len(finished)
    for reason in refused.values():
        report.refused_by_us[reason] += 1
    for axis_doc_id, when in accepted.items():
        arrived = delivered_at.get(axis_doc_id)
        if arrived is None:
            continue
        report.accepted_within_1_working_day += int(when <= add_working_days(arrived, 1))
        report.accepted_within_3_working_days += int(when <= add_working_days(arrived, 3))
    sent_ids = {item.document_id for item in sent}
    statuses = store.reports.outgoing_for_kind(MessageType.STATUS)
    report.recalls_sent = sum(
        1
        for item in statuses
        if item.status_code == "13" and item.document_id in sent_ids and chosen.holds(item.from_code)
    )
    report.recalls_received = store.reports.recalls_received(
        (row.document_id for row in received if row.document_id), chosen
    )
    return report


# --- rendering -----------------------------------------------------------------------------------


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def as_dict(report: Report, period: Period, *, by_level: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "time_zone": "Asia/Ho_Chi_Minh"},
        "agencies": [{"code": code, "name": name} for code, name in report.agencies],
        "sent": {
            "total": report.sent,
            "electronic_only": report.sent - report.sent_with_paper,
            "electronic_only_percent": percent(report.sent - report.sent_with_paper, report.sent),
            "with_paper": report.sent_with_paper,
            "with_paper_percent": percent(report.sent_with_paper, report.sent),
        },
        "received": {
            "total": report.received,
            "digitized": report.received_digitized,
            "digitized_percent": percent(report.received_digitized, report.received),
            "electronic_only": report.received - report.received_digitized,
            "electronic_only_percent": percent(report.received - report.received_digitized, report.received),
            "with_validly_signed_pdfs": report.received_pdf_signed,
            "with_validly_signed_pdfs_percent": percent(report.received_pdf_signed, report.received),
            "with_pdfs_not_validly_signed": report.received_pdf_not_signed,
        },
        "statuses": {
            "accepted_within_1_working_day": report.accepted_within_1_working_day,
            "accepted_within_3_working_days": report.accepted_within_3_working_days,
            "finished": report.finished,
            "refused_by_us": dict(report.refused_by_us),
            "refused_by_recipients": dict(report.refused_by_recipients),
            "recalls_sent": report.recalls_sent,
            "recalls_received": report.recalls_received,
        },
        "weekly": [
            {"week": week, "sent": report.weekly_sent[week], "received": report.weekly_received[week]}
            for week in sorted(set(report.weekly_sent) | set(report.weekly_received))
        ],
        "counting": "a document sent to several recipients counts once as sent and once per receiving agency",
    }
    if by_level:
        data["by_peer_level"] = {
            level: {"sent": report.sent_by_level[level], "received": report.received_by_level[level]}
            for level in LEVELS
        }
    return data


def render(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2)
    if fmt == "csv":
        return _csv(data)
    if fmt == "html":
        return _html(data)
    return _text(data)


def _rows(data: dict[str, Any]) -> list[tuple[str, str, int, float | None]]:
    sent, received, statuses = data["sent"], data["received"], data["statuses"]
    rows: list[tuple[str, str, int, float | None]] = [
        ("sent", "total", sent["total"], None),
        ("sent", "electronic only", sent["electronic_only"], sent["electronic_only_percent"]),
        ("sent", "with paper copy", sent["with_paper"], sent["with_paper_percent"]),
        ("received", "total", received["total"], None),
        ("received", "digitised from paper", received["digitized"], received["digitized_percent"]),
        ("received", "electronic only", received["electronic_only"], received["electronic_only_percent"]),
        (
            "received",
            "PDFs validly signed",
            received["with_validly_signed_pdfs"],
            received["with_validly_signed_pdfs_percent"],
        ),
        ("received", "PDFs not validly signed", received["with_pdfs_not_validly_signed"], None),
        ("statuses", "accepted (03) within 1 working day", statuses["accepted_within_1_working_day"], None),
        ("statuses", "accepted (03) within 3 working days", statuses["accepted_within_3_working_days"], None),
        ("statuses", "finished (06)", statuses["finished"], None),
        ("statuses", "refused by us (02)", sum(statuses["refused_by_us"].values()), None),
        ("statuses", "refused by recipients (02)", sum(statuses["refused_by_recipients"].values()), None),
        ("statuses", "recalls sent (13)", statuses["recalls_sent"], None),
        ("statuses", "recalls received (13)", statuses["recalls_received"], None),
    ]
    for level, counts in data.get("by_peer_level", {}).items():
        rows.append(("peer level", f"sent to {level}", counts["sent"], None))
        rows.append(("peer level", f"received from {level}", counts["received"], None))
    return rows


def _text(data: dict[str, Any]) -> str:
    names = ", ".join(f"{a['code']} {a['name']}" for a in data["agencies"])
    period = data["period"]
    lines = [f"Exchange report: {names}", f"period {period['from']} to {period['to']} ({period['time_zone']})", ""]
    for section, label, count, share in _rows(data):
        share_text = f"{share:6.2f} %" if share is not None else ""
        lines.append(f"{section:<11}{label:<38}{count:>10,}  {share_text}")
    for heading, reasons in (
        ("refused by us", data["statuses"]["refused_by_us"]),
        ("refused by recipients", data["statuses"]["refused_by_recipients"]),
    ):
        for reason, count in sorted(reasons.items()):
            lines.append(f"  {heading}: {count} × {reason}")
    lines += ["", data["counting"]]
    return "\n".join(lines)


def _csv(data: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "metric", "count", "percent"])
    for section, label, count, share in _rows(data):
        writer.writerow([section, label, count, "" if share is None else f"{share:.2f}"])
    for key in ("refused_by_us", "refused_by_recipients"):
        for reason, count in sorted(data["statuses"][key].items()):
            writer.writerow([key.replace("_", " "), reason, count, ""])
    for week in data["weekly"]:
        writer.writerow(["week", week["week"], week["sent"], ""])
        writer.writerow(["week received", week["week"], week["received"], ""])
    return buffer.getvalue()


def _html(data: dict[str, Any]) -> str:
    esc = html.escape
    names = ", ".join(f"{a['code']} {a['name']}" for a in data["agencies"])
    rows = "".join(
        f"<tr><td>{esc(section)}</td><td>{esc(label)}</td><td class=n>{count:,}</td>"
        f"<td class=n>{'' if share is None else f'{share:.2f} %'}</td></tr>"
        for section, label, count, share in _rows(data)
    )
    reasons = "".join(
        f"<tr><td>{esc(key.replace('_', ' '))}</td><td>{esc(reason)}</td><td class=n>{count}</td></tr>"
        for key in ("refused_by_us", "refused_by_recipients")
        for reason, count in sorted(data["statuses"][key].items())
    )
    weeks = data["weekly"]
    peak = max([1] + [max(w["sent"], w["received"]) for w in weeks])
    bar, gap, height = 14, 10, 160
    width = max(300, len(weeks) * (2 * bar + gap) + 40)
    bars = []
    for index, week in enumerate(weeks):
        x = 30 + index * (2 * bar + gap)
        for offset, key, color in ((0, "sent", "#2563eb"), (bar, "received", "#16a34a")):
            h = round(height * week[key] / peak)
            bars.append(
                f'<rect x="{x + offset}" y="{20 + height - h}" width="{bar - 2}" height="{h}" fill="{color}">'
                f"<title>{esc(week['week'])} {key}: {week[key]}</title></rect>"
            )
        bars.append(f'<text x="{x}" y="{height + 36}" font-size="9">{esc(week["week"][5:])}</text>')
    chart = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 50}" role="img" '
        f'aria-label="sent and received per week">{"".join(bars)}</svg>'
    )
    period = data["period"]
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Exchange report {esc(period["from"])} to {esc(period["to"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #999;padding:4px 8px}}td.n{{text-align:right}}@media print{{body{{margin:0}}}}</style></head>
<body><h1>Electronic document exchange</h1>
<p>{esc(names)}<br>Period {esc(period["from"])} to {esc(period["to"])} ({esc(period["time_zone"])})</p>
<table><tr><th>section</th><th>metric</th><th>count</th><th>share</th></tr>{rows}</table>
<table><tr><th>refusals</th><th>reason</th><th>count</th></tr>{reasons}</table>
<h2>Sent (blue) and received (green) per week</h2>{chart}
<p>{esc(data["counting"])}.</p></body></html>
"""
