"""One installation, many agencies: a huyện's gateway hosting its xã and a phòng ([[hosted]]),
against a real axis and the province's own gateway, each a real process."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from gateway import edxml
from gateway.axis_client import AxisClient
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import Province, build_province, send_directly, signed_by, to, wait_until
from tests.messages import full_document

PROVINCE, DISTRICT = "000.00.00.H58", "000.00.31.H58"
XA_HAU_THANH, XA_AN_HUU, PHONG_NOI_VU = "000.01.31.H58", "000.02.31.H58", "000.21.31.H58"
HOSTED = {
    XA_HAU_THANH: "UBND xã Hậu Thành",
    XA_AN_HUU: "UBND xã An Hữu",
    PHONG_NOI_VU: "Phòng Nội vụ huyện Cái Bè",
}


@pytest.fixture
def huyen(tmp_path: Path):
    built = build_province(tmp_path, [PROVINCE, DISTRICT], hosted={DISTRICT: dict(HOSTED)})
    yield built
    built.stop_all()


def started(province: Province) -> Province:
    province.start(DISTRICT)
    province.agencies[DISTRICT].service.wait_for(lambda e: e.get("event") == "agencies_registered", "registration")
    province.start(PROVINCE)
    return province


def job(recipients: list[str], subject: str, number: str) -> dict:
    return {"to": recipients, "subject": subject, "code_number": number, "code_notation": "UBND"}


def directory(province: Province, code: str) -> dict[str, dict]:
    secret = (province.root / code / "secret.txt").read_text().strip()

    async def go() -> list[dict]:
        async with AxisClient(province.axis.url, f"sys-{code}", secret) as client:
            return await client.agencies()

    return {a["code"]: a for a in asyncio.run(go())}


def events(province: Province, code: str) -> list[dict]:
    log = province.agencies[code].folder / "gateway.log"
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


def test_a_document_to_two_hosted_agencies_arrives_in_both_inboxes_answered_by_each(huyen):
    province = started(huyen)
    listed = directory(province, PROVINCE)
    for code in HOSTED:  # registered by the huyện's gateway, under the huyện
        assert listed[code]["pid"] == DISTRICT and listed[code]["name"] == HOSTED[code]
    province.drop_job(PROVINCE, "j1", job([XA_HAU_THANH, XA_AN_HUU], "Kế hoạch chuyển đổi số", "41"), {"a.txt": b"x"})
    for code in (XA_HAU_THANH, XA_AN_HUU):
        inbox = wait_until(lambda code=code: province.hosted[code].delivered(), f"the inbox of {code}")
        assert len(inbox) == 1 and inbox[0]["subject"] == "Kế hoạch chuyển đổi số"
    assert province.agencies[DISTRICT].delivered() == [] and province.hosted[PHONG_NOI_VU].delivered() == []
    # each 01 is signed by its recipient: the province's gateway verified both against their From
    receipts = wait_until(lambda: len(r := province.agencies[PROVINCE].receipts()) == 2 and r, "two 01")
    assert {(code, status) for _, code, status in receipts} == {(XA_HAU_THANH, "01"), (XA_AN_HUU, "01")}
    lines = events(province, DISTRICT)
    delivered = [e for e in lines if e.get("event") == "document_delivered"]
    assert sorted(e["agency"] for e in delivered) == [XA_HAU_THANH, XA_AN_HUU]
    assert all(e.get("agency") for e in lines), [e for e in lines if not e.get("agency")]


def test_hosted_agencies_send_from_their_drop_folders_and_with_send_from(huyen, tmp_path):
    province = started(huyen)
    province.drop_job(XA_HAU_THANH, "bc", job([PROVINCE, XA_AN_HUU], "Báo cáo quý III", "3"), {"b.txt": b"y"})
    attachment = tmp_path / "to-trinh.txt"
    attachment.write_bytes("Tờ trình".encode())
    district = province.agencies[DISTRICT]
    sent = province.run(
        "send", "--config", str(district.config), "--from", PHONG_NOI_VU, "--to", PROVINCE,
        "--subject", "Tờ trình biên chế", "--code-number", "8", str(attachment),
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"{PHONG_NOI_VU},")
    received = wait_until(lambda: len(d := province.agencies[PROVINCE].delivered()) == 2 and d, "both at the province")
    assert sorted(d["from"]["code"] for d in received) == [XA_HAU_THANH, PHONG_NOI_VU]
    wait_until(lambda: province.hosted[XA_AN_HUU].delivered(), "the xã's copy, inside the installation")
    statuses = wait_until(lambda: len(r := district.receipts()) == 3 and r, "three 01")
    assert {(document_id.split(",")[0], code) for document_id, code, _ in statuses} == {
        (XA_HAU_THANH, PROVINCE),
        (XA_HAU_THANH, XA_AN_HUU),
        (PHONG_NOI_VU, PROVINCE),
    }
    refused = province.run("send", "--config", str(district.config), "--from", "000.09.31.H58", "--to", PROVINCE,
                           "--subject", "x")  # fmt: skip
    assert refused.returncode != 0 and "--from 000.09.31.H58" in refused.stderr and "does not host" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_respond_and_recall_sign_as_the_agency_concerned_and_track_and_health_name_it(huyen):
    province = started(huyen)
    district = province.agencies[DISTRICT]
    province.drop_job(PROVINCE, "j1", job([XA_HAU_THANH, XA_AN_HUU], "Công văn", "50"), {"a.txt": b"x"})
    wait_until(lambda: province.hosted[XA_HAU_THANH].delivered() and province.hosted[XA_AN_HUU].delivered(), "copies")
    folder = next(p for p in province.hosted[XA_HAU_THANH].inbox.iterdir() if not p.name.startswith("."))

    def both_recorded() -> bool:  # each folder appears a moment before its record is committed
        with district.store() as store:
            return len(store.incoming.delivered_to(folder.name)) == 2

    wait_until(both_recorded, "both copies' records")
    ambiguous = province.run("respond", "--config", str(district.config), folder.name, "--code", "03")
    assert ambiguous.returncode != 0 and "--agency" in ambiguous.stderr and XA_AN_HUU in ambiguous.stderr
    by_path = province.run("respond", "--config", str(district.config), str(folder), "--code", "03")
    assert by_path.returncode == 0, by_path.stderr
    named = province.run(
        "respond", "--config", str(district.config), folder.name, "--code", "02", "--agency", XA_AN_HUU,
        "--description", "Không thuộc thẩm quyền",
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    wanted = {(XA_HAU_THANH, "03"), (XA_AN_HUU, "02")}
    wait_until(lambda: wanted <= {(c, s) for _, c, s in province.agencies[PROVINCE].receipts()}, "03 and 02")

    province.drop_job(XA_HAU_THANH, "qd", job([PROVINCE], "Quyết định ban hành nhầm", "9"), {"q.txt": b"q"})
    document = wait_until(lambda: province.agencies[PROVINCE].delivered() and next(
        (d for d in province.agencies[PROVINCE].delivered() if d["from"]["code"] == XA_HAU_THANH), None
    ), "the xã's document")  # fmt: skip
    recalled = province.run(
        "recall", "--config", str(district.config), document["document_id"], "--reason", "Ban hành nhầm"
    )
    assert recalled.returncode == 0, recalled.stderr
    province.agencies[PROVINCE].service.wait_for(
        lambda e: e.get("event") == "status_received" and e.get("status_code") == "13", "the recall, verified"
    )
    track = province.run("track", "--config", str(district.config), document["document_id"], "--json")
    story = json.loads(track.stdout)
    assert story["sent"][0]["from"] == XA_HAU_THANH and [s["status_code"] for s in story["statuses_sent"]] == ["13"]

    province.hosted[PHONG_NOI_VU].inbox.rename(province.hosted[PHONG_NOI_VU].folder / "gone")
    result = province.run("health", "--config", str(district.config), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 2 and PHONG_NOI_VU in report["hosted"]
    assert any(p["text"].startswith(f"{PHONG_NOI_VU}: the inbox") for p in report["problems"]), report["problems"]


def test_an_agency_removed_from_the_configuration_stays_at_the_axis_and_its_deliveries_wait_there(huyen):
    province = started(huyen)
    district = province.agencies[DISTRICT]
    district.service.stop()
    text = district.config.read_text(encoding="utf-8")
    removed = f'\n[[hosted]]\ncode = "{XA_AN_HUU}"\nname = "{HOSTED[XA_AN_HUU]}"\n'
    assert removed in text
    district.config.write_text(text.replace(removed, ""), encoding="utf-8")
    province.start(DISTRICT)
    assert XA_AN_HUU in directory(province, PROVINCE), "removing it from [[hosted]] deleted it at the axis"
    letter = signed_by(province, PROVINCE, to(full_document(), XA_AN_HUU, document_id=f"{PROVINCE},2026/12/01,77/UBND"))
    send_directly(province, PROVINCE, letter)
    said = district.service.wait_for(lambda e: e.get("event") == "delivery_not_hosted", "the delivery said")
    assert said["to"] == XA_AN_HUU and said["level"] == "warning"
    province.drop_job(PROVINCE, "j2", job([XA_HAU_THANH], "Sau đó", "78"), {"a.txt": b"x"})
    wait_until(lambda: province.hosted[XA_HAU_THANH].delivered(), "the next document, to a hosted xã")
    assert [e for e in events(province, DISTRICT) if e.get("event") == "delivery_not_hosted"] == [said], "said twice"
    assert not province.hosted[XA_AN_HUU].delivered()
    with district.store() as store:
        assert store.incoming.get(said["axis_doc_id"]) is None  # never fetched, never acknowledged
    district.service.stop()  # hosted again: what waited at the axis is delivered, once
    district.config.write_text(text, encoding="utf-8")
    province.start(DISTRICT)
    arrived = wait_until(lambda: province.hosted[XA_AN_HUU].delivered(), "the delivery that waited")
    assert [d["document_id"] for d in arrived] == [f"{PROVINCE},2026/12/01,77/UBND"]


def test_report_counts_each_hosted_agency_once_and_one_with_agency(huyen):
    province = started(huyen)
    province.drop_job(PROVINCE, "j1", job([XA_HAU_THANH, XA_AN_HUU, DISTRICT], "Thông báo", "60"), {"a.txt": b"x"})
    province.drop_job(XA_HAU_THANH, "bc", job([PROVINCE], "Báo cáo", "4"), {"b.txt": b"y"})
    district = province.agencies[DISTRICT]
    wait_until(lambda: len(district.receipts()) == 1 and len(province.agencies[PROVINCE].receipts()) == 3, "01s")
    today = edxml.now_vietnam()
    quarter = f"{today.year}Q{(today.month - 1) // 3 + 1}"

    def report(*extra: str) -> dict:
        result = province.run("report", "--config", str(district.config), "--quarter", quarter, "--format", "json",
                              *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    whole = report()
    assert (whole["sent"]["total"], whole["received"]["total"]) == (1, 3)
    assert {a["code"] for a in whole["agencies"]} == {DISTRICT, *HOSTED}
    xa = report("--agency", XA_HAU_THANH)
    assert (xa["sent"]["total"], xa["received"]["total"]) == (1, 1)
    assert [a["code"] for a in xa["agencies"]] == [XA_HAU_THANH]
    both = province.run("report", "--config", str(province.root), "--quarter", quarter, "--format", "json")
    assert both.returncode == 0, both.stderr
    total = json.loads(both.stdout)
    assert (total["sent"]["total"], total["received"]["total"]) == (2, 4)  # the province's 1 + 1, received 3 + 1
    unknown = province.run(
        "report", "--config", str(district.config), "--quarter", quarter, "--agency", "000.09.31.H58"
    )
    assert unknown.returncode != 0 and "--agency" in unknown.stderr
    listed = province.run("list", "--config", str(district.config), "--received", "--agency", XA_HAU_THANH, "--json")
    rows = json.loads(listed.stdout)
    assert [(row["to"], row["from"]) for row in rows] == [(XA_HAU_THANH, PROVINCE)]
    sent = json.loads(province.run("list", "--config", str(district.config), "--agency", XA_HAU_THANH, "--json").stdout)
    assert [(row["from"], row["to"]) for row in sent] == [(XA_HAU_THANH, [PROVINCE])]


def test_hosted_agencies_that_cannot_be_are_refused_at_start_naming_the_key(huyen):
    district = huyen.agencies[DISTRICT]
    text = district.config.read_text(encoding="utf-8")
    cases = [
        (f'\n[[hosted]]\ncode = "{XA_HAU_THANH}"\nname = "again"\n', "hosted[3].code", "already hosted[0].code"),
        (f'\n[[hosted]]\ncode = "{DISTRICT}"\nname = "the huyện"\n', "hosted[3].code", "own [agency]"),
        (
            f'\n[[hosted]]\ncode = "000.03.31.H58"\nname = "x"\nkey = "../pki/{XA_HAU_THANH}.key"\n'
            f'cert = "../pki/{XA_HAU_THANH}.pem"\n',
            "hosted[3].cert",
            f"the certificate is for {XA_HAU_THANH}",
        ),
        (
            f'\n[[hosted]]\ncode = "000.04.31.H58"\nname = "x"\nkey = "../pki/{XA_HAU_THANH}.key"\n'
            f'cert = "../pki/{XA_HAU_THANH}.pem"\noutbox = "hosted/{XA_AN_HUU}/outbox/sub"\n',
            "hosted[3].outbox",
            "overlaps hosted[1].outbox",
        ),
        ('\n[[hosted]]\ncode = "000.05.31.H58"\nname = "x"\n', "hosted[3].key", "does not exist"),
        (
            f'\n[[hosted]]\ncode = "000.06.31.H58"\nname = "x"\nkey = "../pki/{XA_HAU_THANH}.key"\n'
            f'cert = "../pki/{XA_HAU_THANH}.pem"\ninbox = "var/outgoing/x"\n',
            "hosted[3].inbox",
            "overlaps paths.data_dir",
        ),
    ]
    for extra, key, message in cases:
        district.config.write_text(text + extra, encoding="utf-8")
        result = huyen.run("run", "--config", str(district.config))
        assert result.returncode == 78, (extra, result.stderr)
        assert key in result.stderr and message in result.stderr, (key, message, result.stderr)
        assert "Traceback" not in result.stderr


def test_an_agency_registered_after_the_sender_read_the_directory_is_addressable_at_once(huyen, tmp_path):
    """The province's gateway read the directory before the huyện registered its xã: its drop
    folder and `send` read it again rather than refuse the new codes."""
    province = huyen
    sender = province.agencies[PROVINCE]
    province.start(PROVINCE)

    def directory_read() -> tuple[dict, float]:
        with sender.store() as store:
            return json.loads(store.meta("directory") or "{}"), float(store.meta("directory_at") or 0)

    names, _ = wait_until(lambda: (d := directory_read())[1] and d, "the province's first directory")
    assert XA_HAU_THANH not in names  # read before the huyện registered its xã
    province.start(DISTRICT)
    province.agencies[DISTRICT].service.wait_for(lambda e: e.get("event") == "agencies_registered", "registration")
    attachment = tmp_path / "a.txt"
    attachment.write_bytes(b"y")
    sent = province.run("send", "--config", str(sender.config), "--to", XA_AN_HUU,
                        "--subject", "Giấy mời", "--code-number", "2", str(attachment))  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    names, _ = directory_read()
    assert XA_AN_HUU in names  # `send` read the directory again, and kept it
    province.drop_job(PROVINCE, "j1", job([XA_HAU_THANH], "Công văn", "1"), {"a.txt": b"x"})
    wait_until(lambda: province.hosted[XA_HAU_THANH].delivered() and province.hosted[XA_AN_HUU].delivered(), "both")
    assert not list((province.agencies[PROVINCE].outbox / "failed").iterdir())
    typo = province.run("send", "--config", str(province.agencies[PROVINCE].config), "--to", "000.77.31.H58",
                        "--subject", "x", str(attachment))  # fmt: skip
    assert typo.returncode != 0 and "INT802" in typo.stderr and "000.77.31.H58" in typo.stderr


def test_a_hosted_agencys_message_past_its_deadline_fails_under_the_agencys_name(huyen):
    """The failure is the xã's, where an admin reading the log by agency looks (it was logged
    as the huyện's: found by the quarter's replay)."""
    district = huyen.agencies[DISTRICT]
    text = district.config.read_text(encoding="utf-8")
    district.config.write_text(text.replace("deadline_hours = 1.0", "deadline_hours = 0.0011"), "utf-8")  # 4 s
    province = started(huyen)  # registered: a hosted agency's messages are held until then
    assert province.axis.service.stop() == 0
    province.drop_job(XA_HAU_THANH, "late", job([PROVINCE], "Sẽ quá hạn", "7"), {})
    failed = district.service.wait_for(lambda e: e.get("event") == "message_failed", "the deadline")
    assert failed["agency"] == XA_HAU_THANH and failed["reason"] == "deadline passed", failed


def test_an_agency_the_axis_counts_as_another_systems_waits_and_health_says_why(huyen):
    """A hosted code the axis gives to another system (here a typo: the province's own code):
    the axis refuses its first document (ErrorCode 19), so its documents wait in the queue,
    never failed, registering it is tried again and refused, health warns, the others go on."""
    province = huyen
    district = province.agencies[DISTRICT]
    taken = (
        f'\n[[hosted]]\ncode = "{PROVINCE}"\nname = "mistyped"\n'
        'outbox = "hosted/taken/outbox"\ninbox = "hosted/taken/inbox"\n'
    )
    text = district.config.read_text(encoding="utf-8")
    assert "deadline_hours = 1.0" in text  # a deadline of 7 s: held messages must outlive it
    district.config.write_text(text.replace("deadline_hours = 1.0", "deadline_hours = 0.002") + taken, "utf-8")
    province.start(DISTRICT)
    province.start(PROVINCE)
    waiting = district.folder / "hosted" / "taken" / "outbox"
    hidden = waiting / ".job"
    hidden.mkdir()
    (hidden / "document.json").write_text(json.dumps(job([XA_AN_HUU], "Giữ lại", "6")), encoding="utf-8")
    hidden.rename(waiting / "job")
    refused = district.service.wait_for(lambda e: e.get("event") == "agency_not_registered", "the refusal")
    assert refused["agency"] == PROVINCE and "ErrorCode 19" in refused["reason"]
    again = district.service.wait_for(
        lambda e: e.get("event") == "agency_not_registered" and "another system" in e.get("reason", ""), "registering"
    )
    assert again["agency"] == PROVINCE
    result = province.run("health", "--config", str(district.config), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1, report
    assert any(p["text"].startswith(f"{PROVINCE}: not registered at the axis") for p in report["problems"])
    province.drop_job(XA_HAU_THANH, "bc", job([PROVINCE], "Báo cáo", "5"), {"b.txt": b"y"})
    wait_until(lambda: province.agencies[PROVINCE].delivered(), "the xã's document, meanwhile")
    assert not province.hosted[XA_AN_HUU].delivered()
    with district.store() as store:
        (held,) = [item for item in store.reports.outgoing_for_kind(MessageType.EDOC) if item.from_code == PROVINCE]
    wait_until(lambda: time.time() > held.deadline_at + 2, "its deadline to pass", timeout=20)
    with district.store() as store:
        (held,) = [item for item in store.reports.outgoing_for_kind(MessageType.EDOC) if item.from_code == PROVINCE]
    assert held.state == "queued" and "ErrorCode 19" in (held.last_error or "")
    # the agency taken out of [[hosted]]: its held message is refused once more and fails, for
    # `retry` or `abandon` (found in review: it was held for ever, out of its deadline's reach,
    # and every registration round looked it up among the hosted: a KeyError each time)
    district.service.stop()
    district.config.write_text(district.config.read_text(encoding="utf-8").replace(taken, ""), "utf-8")
    restarted = province.start(DISTRICT)
    restarted.service.wait_for(lambda e: e.get("event") == "message_failed", "its deadline, passed meanwhile")
    retried = province.run("retry", "--config", str(district.config), held.document_id)
    assert retried.returncode == 0, retried.stderr
    failed = restarted.service.wait_for(
        lambda e: e.get("event") == "message_failed" and "ErrorCode 19" in e.get("reason", ""), "refused, failed"
    )
    assert failed["document_id"] == held.document_id
    with district.store() as store:
        (held,) = [item for item in store.reports.outgoing_for_kind(MessageType.EDOC) if item.from_code == PROVINCE]
    assert held.state == "failed"
    time.sleep(1.0)
    assert "worker_error" not in restarted.service.event_names()


def test_the_same_job_folder_dropped_by_two_hosted_agencies_is_two_documents(huyen):
    """Entries are known by name and content to take them once across crashes; two agencies'
    identical entries are still two documents, each sent as its agency."""
    province = started(huyen)
    same = job([PROVINCE], "Báo cáo tuần", "12")
    for code in (XA_HAU_THANH, XA_AN_HUU):
        province.drop_job(code, "bao-cao", same, {"bao-cao.txt": b"same bytes"})
    received = wait_until(lambda: len(d := province.agencies[PROVINCE].delivered()) == 2 and d, "both documents")
    assert sorted(d["from"]["code"] for d in received) == [XA_HAU_THANH, XA_AN_HUU]
