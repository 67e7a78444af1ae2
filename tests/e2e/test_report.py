"""The quarterly report over a synthetic quarter run through real gateways: exact in every format."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime

from gateway import edxml
from gateway.daemon.compose import DIGITIZED_MARK
from tests.conftest import REPO
from tests.e2e.province import wait_until
from tests.messages import full_document

MINISTRY, PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.G22", "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"


def ready(number: int, sent_at: datetime, recipients: tuple[str, ...], *, paper=False, digitized=False) -> bytes:
    """An edXML the province's document system drops, stamped by its sender at `sent_at` (Vietnam time)."""
    base = full_document(sender=PROVINCE, attachments=1)
    to = tuple(dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(code)) for code in recipients)
    document = dataclasses.replace(
        base,
        to=to,
        document_id=f"{PROVINCE},{sent_at:%Y/%m/%d},{number}/UBND-VP",
        code=edxml.Code(str(number), "UBND-VP"),
        promulgation_info=edxml.PromulgationInfo("Mỹ Tho", sent_at.date()),
        trace_headers=(edxml.TraceHeader(edxml.AgencyCode(PROVINCE), sent_at),),
        business=edxml.Business(paper=paper),
        application_type=DIGITIZED_MARK if digitized else None,
        subject=f"Văn bản {number}",
    )
    return edxml.build(document)


def test_quarter_report_is_exact(province):
    for code in (PROVINCE, DEPARTMENT, DISTRICT, MINISTRY):
        province.start(code)
    plan = {
        1: ready(1, datetime(2023, 6, 30, 23, 59, 59), (DEPARTMENT,)),  # the second before Q3: out
        2: ready(2, datetime(2023, 7, 1, 0, 0, 0), (DEPARTMENT, DISTRICT), paper=True),  # the first second: in
        3: ready(3, datetime(2023, 9, 30, 23, 59, 59), (DISTRICT,), digitized=True),  # the last second: in
        4: ready(4, datetime(2023, 10, 1, 0, 0, 0), (MINISTRY,)),  # the first second of Q4: out
        5: ready(5, datetime(2023, 8, 15, 10, 0, 0), (MINISTRY,), paper=True),
    }
    for number, data in plan.items():
        (province.agencies[PROVINCE].outbox / f"van-ban-{number}.edxml").write_bytes(data)
    expected_deliveries = {DEPARTMENT: 2, DISTRICT: 2, MINISTRY: 2}
    for code, count in expected_deliveries.items():
        wait_until(lambda c=code, n=count: len(province.agencies[c].delivered()) == n, f"deliveries at {code}")

    def inbox_id(code: str, number: int) -> str:
        return next(d["id"] for d in province.agencies[code].delivered() if d["subject"] == f"Văn bản {number}")

    def respond(code: str, number: int, status: str, description: str | None = None) -> None:
        args = ["respond", "--config", str(province.agencies[code].config), inbox_id(code, number), "--code", status]
        result = province.run(*args, *(["--description", description] if description else []))
        assert result.returncode == 0, result.stderr

    respond(DEPARTMENT, 2, "02", "Không thuộc thẩm quyền")
    for status in ("03", "04", "05", "06"):
        respond(DISTRICT, 2, status)
        respond(DISTRICT, 3, status)
    respond(MINISTRY, 5, "03")
    recalled = json.loads(
        province.run(
            "track", "--config", str(province.agencies[PROVINCE].config), f"{PROVINCE},2023/09/30,3/UBND-VP", "--json"
        ).stdout
    )
    assert recalled["sent"]
    result = province.run(
        "recall",
        "--config",
        str(province.agencies[PROVINCE].config),
        f"{PROVINCE},2023/09/30,3/UBND-VP",
        "--reason",
        "Ban hành nhầm",
    )
    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: (
            {(r[1], r[2]) for r in province.agencies[PROVINCE].receipts()}
            >= {(DEPARTMENT, "02"), (DISTRICT, "06"), (MINISTRY, "03")}
        ),
        "the statuses back at the province",
    )
    wait_until(
        lambda: (
            list((province.agencies[DISTRICT].inbox / inbox_id(DISTRICT, 3) / "events").glob("*-13.json"))
            if (province.agencies[DISTRICT].inbox / inbox_id(DISTRICT, 3) / "events").is_dir()
            else []
        ),
        "the recall at the district",
    )

    def recall_recorded() -> bool:  # its event file is written a moment before its record is committed
        with province.agencies[DISTRICT].store() as store:
            return store.reports.recalls_received([f"{PROVINCE},2023/09/30,3/UBND-VP"]) == 1

    wait_until(recall_recorded, "the recall's record at the district")

    configs = [str(province.agencies[c].config) for c in (PROVINCE, DEPARTMENT, DISTRICT, MINISTRY)]
    base = ["report", "--quarter", "2023Q3", "--by-peer-level"] + [a for c in configs for a in ("--config", c)]
    outputs = {}
    for fmt in ("json", "text", "csv", "html"):
        result = province.run(*base, "--format", fmt)
        assert result.returncode == 0, result.stderr
        outputs[fmt] = result.stdout
    # /etc/edxml-gateway as an admin keeps it: the gateways' configurations beside the axis's
    etc = province.root / "etc"
    etc.mkdir()
    for code in (PROVINCE, DEPARTMENT, DISTRICT, MINISTRY):
        (etc / f"{code}.toml").symlink_to(province.agencies[code].config)
    (etc / "axis.toml").symlink_to(province.axis.config_path)
    (etc / "province-old-name.toml").symlink_to(province.agencies[PROVINCE].config)  # the same record twice
    (etc / "config.example.toml").write_bytes((REPO / "config.example.toml").read_bytes())  # never started
    by_folder = province.run(*base[:3], "--by-peer-level", "--config", str(etc), "--format", "json")
    assert by_folder.returncode == 0, by_folder.stderr
    assert "already counted" in by_folder.stderr and "no gateway database" in by_folder.stderr
    from_folder, from_files = json.loads(by_folder.stdout), json.loads(outputs["json"])
    assert sorted(from_folder.pop("agencies"), key=str) == sorted(from_files.pop("agencies"), key=str)
    assert from_folder == from_files
    data = json.loads(outputs["json"])
    assert data["period"] == {"from": "2023-07-01", "to": "2023-09-30", "time_zone": "Asia/Ho_Chi_Minh"}
    assert data["sent"] == {
        "total": 3,
        "electronic_only": 1,
        "electronic_only_percent": 33.33,
        "with_paper": 2,
        "with_paper_percent": 66.67,
    }
    # document 2 went to two agencies: received twice, sent once
    assert data["received"] == {
        "total": 4,
        "digitized": 1,
        "digitized_percent": 25.0,
        "electronic_only": 3,
        "electronic_only_percent": 75.0,
        # their PDFs are unsigned: none counts as carrying a valid signature
        "with_validly_signed_pdfs": 0,
        "with_validly_signed_pdfs_percent": 0.0,
        "with_pdfs_not_validly_signed": 4,
    }
    statuses = data["statuses"]
    assert statuses["accepted_within_1_working_day"] == 3 and statuses["accepted_within_3_working_days"] == 3
    assert statuses["finished"] == 2
    assert statuses["refused_by_us"] == {"Không thuộc thẩm quyền": 1}
    assert statuses["refused_by_recipients"] == {"Không thuộc thẩm quyền": 1}
    assert statuses["recalls_sent"] == 1 and statuses["recalls_received"] == 1
    assert data["by_peer_level"]["district"] == {"sent": 2, "received": 0}
    assert data["by_peer_level"]["ministry"] == {"sent": 1, "received": 0}
    assert data["by_peer_level"]["province"] == {"sent": 0, "received": 4}
    assert {w["week"]: (w["sent"], w["received"]) for w in data["weekly"]} == {
        "2023-06-26": (1, 2),
        "2023-08-14": (1, 1),
        "2023-09-25": (1, 1),
    }
    # the same figures in every other format
    assert "33.33 %" in outputs["text"] and "66.67 %" in outputs["text"] and " 25.00 %" in outputs["text"]
    rows = {(r["section"], r["metric"]): r for r in csv.DictReader(io.StringIO(outputs["csv"]))}
    assert rows[("sent", "total")]["count"] == "3" and rows[("sent", "with paper copy")]["percent"] == "66.67"
    assert rows[("received", "total")]["count"] == "4" and rows[("received", "digitised from paper")]["count"] == "1"
    assert rows[("statuses", "finished (06)")]["count"] == "2"
    assert "<svg" in outputs["html"] and "66.67 %" in outputs["html"] and "<td class=n>4</td>" in outputs["html"]
    # one agency alone, and a period by dates
    alone = json.loads(
        province.run(
            "report", "--config", configs[0], "--from", "2023-07-01", "--to", "2023-07-01", "--format", "json"
        ).stdout
    )
    assert alone["sent"]["total"] == 1 and alone["received"]["total"] == 0
    for wrong, message in (
        (["--quarter", "2023Q5"], "2023Q3"),
        (["--from", "2023-07-01"], "--from and --to"),
        (["--quarter", "2023Q3", "--from", "2023-07-01"], "give --quarter, or"),
    ):
        refused = province.run("report", "--config", configs[0], *wrong)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
