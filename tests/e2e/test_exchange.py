"""Documents travel from one agency's drop folder to others' inboxes, and statuses come back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import wait_until

MINISTRY, PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.G22", "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"


def test_drop_folder_to_inboxes_with_status_01_back(province):
    for code in province.agencies:
        province.start(code)
    pdf = b"%PDF-1.4 quyet dinh " * 100
    province.drop_job(
        PROVINCE,
        "cong-van-1",
        {
            "to": [DEPARTMENT, DISTRICT],
            "subject": "Về việc triển khai văn bản điện tử",
            "code_number": "12",
            "code_notation": "UBND-VP",
            "paper": True,
        },
        {"Quyết định 12.pdf": pdf, "../evil.txt".replace("/", "_"): b"x"},
    )
    inboxes = {}
    for code in (DEPARTMENT, DISTRICT):
        (received,) = wait_until(lambda c=code: province.agencies[c].delivered(), f"delivery at {code}")
        inboxes[code] = received
        assert received["from"]["code"] == PROVINCE and received["subject"] == "Về việc triển khai văn bản điện tử"
        signature = received["signature"]
        assert (signature["state"], signature["signer"]) == ("valid", PROVINCE)
        # the sender's hop is signed, the axis appended its own; the certificate was judged when
        # the axis says it accepted the document (a second ago), not at delivery
        assert (signature["signed_hops"], signature["relay_hops"]) == (1, 1)
        checked_at = datetime.fromisoformat(signature["certificate_checked_at"])
        assert timedelta(0) <= datetime.now(UTC) - checked_at < timedelta(minutes=1)
        assert checked_at.microsecond == 0  # the axis's created_time, to the second; not a clock read now
        assert received["paper"] is True
        folder = province.agencies[code].inbox / received["id"]
        assert (folder / "attachments" / "Quyết định 12.pdf").read_bytes() == pdf
        assert (folder / "envelope.edxml").is_file()
    document_id = f"{PROVINCE},{received['promulgation']['date'].replace('-', '/')},12/UBND-VP"
    assert received["document_id"] == document_id
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 2, "two status 01 receipts")
    assert province.agencies[PROVINCE].receipts() == [(document_id, DEPARTMENT, "01"), (document_id, DISTRICT, "01")]
    assert not list(province.agencies[PROVINCE].outbox.glob("cong-van-1*"))

    # the department processes it: 03, 04, 05, 06 come back in order
    config = str(province.agencies[DEPARTMENT].config)
    for code in ("03", "04", "05", "06"):
        result = province.run(
            "respond", "--config", config, inboxes[DEPARTMENT]["id"], "--code", code, "--staff", "Trần Thị B"
        )
        assert result.returncode == 0, result.stderr
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 6, "the department's 03-06")
    tracked = province.run("track", "--config", str(province.agencies[PROVINCE].config), document_id, "--json")
    timeline = json.loads(tracked.stdout)
    assert [r["status_code"] for r in timeline["sent"][0]["recipients"][DEPARTMENT]] == ["01", "03", "04", "05", "06"]
    assert [r["status_code"] for r in timeline["sent"][0]["recipients"][DISTRICT]] == ["01"]


def test_cli_send_and_a_ready_edxml_file_from_the_drop_folder(province, tmp_path):
    from gateway import edxml
    from tests.messages import full_document

    for code in (PROVINCE, DEPARTMENT, MINISTRY):
        province.start(code)
    attachment = tmp_path / "Báo cáo.docx"
    attachment.write_bytes(b"PK\x03\x04 docx bytes")
    sent = province.run(
        "send",
        "--config",
        str(province.agencies[MINISTRY].config),
        "--to",
        PROVINCE,
        "--to",
        DEPARTMENT,
        "--subject",
        "Về việc báo cáo quý",
        "--code-number",
        "7816",
        "--code-notation",
        "VPCP-TTĐT",
        str(attachment),
    )
    assert sent.returncode == 0, sent.stderr
    document_id = sent.stdout.strip()
    assert document_id.startswith(f"{MINISTRY},") and document_id.endswith(",7816/VPCP-TTĐT")
    # a ready, unsigned edXML from the department's document system: the gateway adds its hop and signs
    ready = full_document(sender=DEPARTMENT)
    import dataclasses

    ready = dataclasses.replace(
        ready,
        to=(dataclasses.replace(ready.to[0], organ_id=edxml.AgencyCode(PROVINCE)),),
        trace_headers=(),
        document_id=f"{DEPARTMENT},2026/11/25,55/SNV",
    )
    (province.agencies[DEPARTMENT].outbox / "ready.edxml").write_bytes(edxml.build(ready))
    delivered = wait_until(
        lambda: len(province.agencies[PROVINCE].delivered()) == 2 and province.agencies[PROVINCE].delivered(),
        "two documents at the province",
    )
    by_id = {d["document_id"]: d for d in delivered}
    assert by_id[document_id]["attachments"][0]["name"] == "Báo cáo.docx"
    from_department = by_id[f"{DEPARTMENT},2026/11/25,55/SNV"]
    assert from_department["signature"]["signer"] == DEPARTMENT
    envelope = edxml.read((province.agencies[PROVINCE].inbox / from_department["id"] / "envelope.edxml").read_bytes())
    assert [t.organ_id.text for t in envelope.trace_headers] == [DEPARTMENT, MINISTRY]  # sender's hop, the axis's
    wait_until(
        lambda: (
            province.agencies[MINISTRY].receipts() == [(document_id, PROVINCE, "01"), (document_id, DEPARTMENT, "01")]
        ),
        "the ministry's two 01",
    )


def test_refused_job_goes_to_failed_with_the_reason(province):
    province.start(PROVINCE)
    province.drop_job(PROVINCE, "no-recipient", {"subject": "Thiếu người nhận"}, {})
    failed = province.agencies[PROVINCE].outbox / "failed"
    error = wait_until(
        lambda: (failed / "no-recipient.error.txt").is_file() and (failed / "no-recipient.error.txt"), "the refusal"
    )
    assert "INT800" in error.read_text() and "no-recipient/document.json: to" in error.read_text()
    assert (failed / "no-recipient" / "document.json").is_file()
    bad = province.agencies[PROVINCE].outbox / "not-ours.edxml"
    from gateway import edxml
    from tests.messages import full_document

    bad.write_bytes(edxml.build(full_document(sender=MINISTRY)))
    error = wait_until(
        lambda: (failed / "not-ours.edxml.error.txt").is_file() and (failed / "not-ours.edxml.error.txt"),
        "the second refusal",
    )
    assert "this gateway sends for 000.00.00.H58" in error.read_text()
    # a name of 246 bytes (78 Vietnamese letters of three bytes): the names intake keeps beside it
    # would pass the file system's 255, so it is refused, under a name that fits, and the next is taken
    long_name = "Tờ trình " + "ữ" * 78
    length = len(long_name.encode())
    assert 240 < length < 255
    province.drop_job(PROVINCE, long_name, {"subject": "Tên quá dài", "to": [DEPARTMENT]}, {"a.txt": b"x"})
    province.drop_job(PROVINCE, "after-the-long-one", {"subject": "Văn bản sau", "to": [DEPARTMENT]}, {"a.txt": b"y"})
    refused = province.agencies[PROVINCE].service.wait_for(
        lambda e: e.get("event") == "intake_refused" and "bytes long" in e.get("reason", ""), "the long name refused"
    )
    assert f"{length} bytes long" in refused["reason"] and "at most 200 bytes" in refused["reason"]
    moved = Path(refused["moved_to"])
    assert moved.parent == failed and len(moved.name.encode()) <= 200 and (moved / "document.json").is_file()
    assert f"{length} bytes long" in (failed / f"{moved.name}.error.txt").read_text()
    province.agencies[PROVINCE].service.wait_for(
        lambda e: e.get("event") == "intake_taken" and e.get("entry") == "after-the-long-one", "the next entry taken"
    )
    assert "worker_error" not in province.agencies[PROVINCE].service.event_names()


def test_a_document_that_fails_verification_is_kept_and_answered_with_02(tmp_path):
    """The district trusts only the CA that issued its own certificate; the province's
    certificate comes from another one, which the axis and the province also trust."""
    from gateway.pki_folder import init_dir, issue_to_dir
    from tests.axis.running import start_axis
    from tests.e2e.province import build_province, free_port

    province = build_province(tmp_path / "province", [PROVINCE, DISTRICT], axis_port=free_port())
    try:
        other = tmp_path / "other-ca"
        init_dir(other)
        cert, key = issue_to_dir(other, PROVINCE, "UBND tỉnh Tiền Giang")
        both = tmp_path / "both-cas.pem"
        both.write_bytes((province.root / "pki" / "ca.pem").read_bytes() + (other / "ca.pem").read_bytes())
        province.axis.service.stop()
        axis_config = province.axis.config_path
        axis_config.write_text(axis_config.read_text().replace('trust = "../pki/ca.pem"', f'trust = "{both}"'))
        province.axis = start_axis(province.axis.folder, axis_config)
        sender = province.agencies[PROVINCE]
        sender.config.write_text(
            sender.config.read_text(encoding="utf-8")
            .replace(f'key = "../pki/{PROVINCE}.key"', f'key = "{key}"')
            .replace(f'cert = "../pki/{PROVINCE}.pem"', f'cert = "{cert}"')
            .replace('trust = "../pki/ca.pem"', f'trust = "{both}"'),
            encoding="utf-8",
        )
        district = province.agencies[DISTRICT]
        for code in (PROVINCE, DISTRICT):
            province.start(code)
        province.drop_job(
            PROVINCE,
            "to-district",
            {"to": [DISTRICT], "subject": "Văn bản thử", "code_number": "9", "code_notation": "UBND"},
            {"a.txt": b"abc"},
        )
        rejected = district.inbox / ".rejected"
        folder = wait_until(lambda: [p for p in rejected.iterdir() if not p.name.startswith(".")], "a rejection")[0]
        reason = (folder / "reason.txt").read_text()
        assert "SIG205" in reason and (folder / "envelope.edxml").is_file()
        assert district.delivered() == []
        receipts = wait_until(lambda: sender.receipts(), "the 02 at the province")
        assert [(r[1], r[2]) for r in receipts] == [(DISTRICT, "02")]
        with sender.store() as store:
            ((_, receipt),) = store.reports.statuses_received()
        assert "SIG205" in receipt.description
    finally:
        province.stop_all()


def test_recall_answered_with_15_and_16(province):
    for code in (PROVINCE, DEPARTMENT, DISTRICT):
        province.start(code)
    province.drop_job(
        PROVINCE,
        "to-recall",
        {
            "to": [DEPARTMENT, DISTRICT],
            "subject": "Văn bản sẽ thu hồi",
            "code_number": "77",
            "code_notation": "UBND-VP",
        },
        {},
    )
    received = {
        code: wait_until(lambda c=code: province.agencies[c].delivered(), f"delivery at {code}")[0]
        for code in (DEPARTMENT, DISTRICT)
    }
    document_id = received[DEPARTMENT]["document_id"]
    result = province.run(
        "recall", "--config", str(province.agencies[PROVINCE].config), document_id, "--reason", "Ban hành nhầm"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("recall request (13) queued for"), result.stdout
    # asked again (a script that died after asking, run again): nothing is sent twice
    again = province.run(
        "recall", "--config", str(province.agencies[PROVINCE].config), document_id, "--reason", "Ban hành nhầm"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"recall request (13) queued before for {DEPARTMENT}, {DISTRICT}: not sent again\n"
    with province.agencies[PROVINCE].store() as store:
        recalls = [s for s in store.reports.outgoing_for_kind(MessageType.STATUS) if s.status_code == "13"]
    assert sorted(r.to_codes for r in recalls) == [(DEPARTMENT,), (DISTRICT,)]
    for code in (DEPARTMENT, DISTRICT):
        events = province.agencies[code].inbox / received[code]["id"] / "events"
        event_file = wait_until(lambda e=events: e.is_dir() and list(e.glob("*-13.json")), f"the recall at {code}")[0]
        event = json.loads(event_file.read_text(encoding="utf-8"))
        assert event["status_code"] == "13" and event["description"] == "Ban hành nhầm" and event["from"] == PROVINCE
    for code, answer in ((DEPARTMENT, "15"), (DISTRICT, "16")):
        result = province.run(
            "respond", "--config", str(province.agencies[code].config), received[code]["id"], "--code", answer
        )
        assert result.returncode == 0, result.stderr
    again = province.run(
        "respond", "--config", str(province.agencies[DEPARTMENT].config), received[DEPARTMENT]["id"], "--code", "16"
    )
    assert again.returncode == 2 and "already answered (15)" in again.stderr
    wait_until(
        lambda: (
            {(r[1], r[2]) for r in province.agencies[PROVINCE].receipts()} >= {(DEPARTMENT, "15"), (DISTRICT, "16")}
        ),
        "15 and 16 at the province",
    )


def test_an_answer_is_composed_from_the_record_even_after_the_inbox_folder_was_taken_away(province):
    """Delivery keeps what answering needs (the document's ResponseFor) in its record: the
    document system may move the inbox folder into its own store and answer days later. A row
    a gateway kept before v9 (answering NULL) is answered from the envelope in the inbox."""
    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    job = {"to": [DEPARTMENT], "subject": "Văn bản cần trả lời", "code_number": "12", "code_notation": "UBND-VX"}
    province.drop_job(PROVINCE, "answered", job, {})
    (received,) = wait_until(province.agencies[DEPARTMENT].delivered, "the delivery")
    department = province.agencies[DEPARTMENT]

    def answering_kept() -> str | None:
        # the inbox folder appears first, its record is committed a moment later
        with department.store() as store:
            row = store.db.execute("SELECT answering FROM incoming WHERE inbox_id = ?", (received["id"],)).fetchone()
        return None if row is None else row[0]

    record = json.loads(wait_until(answering_kept, "the delivery's record"))
    assert record["organ_id"] == PROVINCE and record["code"] == "12/UBND-VX"
    assert record["document_id"] == received["document_id"] and record["changes"] is False
    config = str(department.config)
    folder = department.inbox / received["id"]
    taken_away = folder.rename(department.folder / "imported-by-the-document-system")
    result = province.run("respond", "--config", config, received["document_id"], "--code", "03")
    assert result.returncode == 0, result.stderr
    # a recall meanwhile is recorded, and does not make the folder again (empty, but for events/)
    recall = province.run(
        "recall", "--config", str(province.agencies[PROVINCE].config), received["document_id"], "--reason", "Nhầm"
    )
    assert recall.returncode == 0, recall.stderr
    department.service.wait_for(
        lambda e: e.get("event") == "status_received" and e.get("status_code") == "13", "the recall recorded"
    )
    assert not folder.exists()
    taken_away.rename(folder)
    with department.store() as store:
        store.db.execute("UPDATE incoming SET answering = NULL WHERE inbox_id = ?", (received["id"],))
        store.db.commit()
    result = province.run("respond", "--config", config, received["id"], "--code", "04")
    assert result.returncode == 0, result.stderr
    # the sender matched both to its document: each named it as it was sent
    wait_until(
        lambda: (
            {(r[1], r[2]) for r in province.agencies[PROVINCE].receipts()} >= {(DEPARTMENT, "03"), (DEPARTMENT, "04")}
        ),
        "03 and 04 at the sender",
    )


def test_bad_configuration_is_refused_naming_the_key(province):
    agency = province.agencies[PROVINCE]
    agency.config.write_text(
        agency.config.read_text(encoding="utf-8").replace('system_id = "sys-', 'systemid = "sys-'), encoding="utf-8"
    )
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78  # EX_CONFIG: the unit does not restart it
    (said,) = [json.loads(line) for line in result.stderr.splitlines()]  # the journal's jq reads it too
    assert said["event"] == "not_started" and said["code"] == "CFG500" and said["level"] == "error"
    assert "CFG500" in result.stderr and "axis.systemid" in result.stderr and "Traceback" not in result.stderr
    result = province.run("health", "--config", str(agency.config))
    assert result.returncode == 3 and "axis.systemid" in result.stderr  # UNKNOWN: health could not look


def test_deadline_failed_then_retried_by_hand(tmp_path):
    from tests.axis.running import start_axis
    from tests.e2e.province import build_province, free_port

    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], axis_port=free_port())
    try:
        sender = province.agencies[PROVINCE]
        province.start(PROVINCE, extra="")
        province.start(DEPARTMENT)
        sender_config = str(sender.config)
        assert province.axis.service.stop() == 0
        # an hour is the test configuration's deadline; make it four seconds for this sender
        sender.service.stop()
        sender.config.write_text(
            sender.config.read_text(encoding="utf-8").replace("deadline_hours = 1.0", "deadline_hours = 0.0011"),
            encoding="utf-8",
        )
        province.start(PROVINCE)
        province.drop_job(
            PROVINCE,
            "late",
            {"to": [DEPARTMENT], "subject": "Sẽ quá hạn", "code_number": "5", "code_notation": "UBND"},
            {},
        )

        def failed_items() -> list[dict]:
            result = province.run("health", "--config", sender_config, "--json")
            assert result.returncode in (0, 1), result.stderr
            return json.loads(result.stdout)["failed"]

        failed = wait_until(failed_items, "the document to fail its deadline")[0]
        assert "within" in failed["error"], failed
        province.axis = start_axis(province.axis.folder, province.axis.config_path)
        # the retried message gets a fresh four-second deadline: retry once the sender sees the axis again
        sender.service.wait_for(lambda e: e.get("event") == "axis_reachable", "the sender to reach the axis")
        retried = province.run("retry", "--config", sender_config, failed["document_id"])
        assert retried.returncode == 0 and "1 message(s) queued again" in retried.stdout
        wait_until(lambda: province.agencies[DEPARTMENT].delivered(), "the retried document")
        nothing = province.run("retry", "--config", sender_config, "no-such-document")
        assert nothing.returncode == 2 and "no message 'no-such-document' was queued here" in nothing.stderr
        again = province.run("retry", "--config", sender_config, failed["document_id"])
        assert again.returncode == 2 and ("it is queued" in again.stderr or "it is sent" in again.stderr)
    finally:
        province.stop_all()


def test_sigterm_stops_promptly_and_secrets_stay_out_of_the_logs(province):
    agency = province.start(PROVINCE)
    province.drop_job(PROVINCE, "one", {"to": [MINISTRY], "subject": "Một văn bản"}, {})
    wait_until(lambda: "message_sent" in agency.service.event_names(), "a send")
    assert agency.service.stop(timeout=10) == 0
    assert agency.service.event_names()[-1] == "gateway_stopped"
    log = agency.service.text()
    assert f"secret-of-{PROVINCE}-for-tests" not in log
    assert all(e.get("agency") == PROVINCE for e in agency.service.events if "agency" in e)


def test_a_job_over_the_size_limits_is_refused_before_its_files_are_read(province):
    """[limits] apply at intake: a file over max_attachment_bytes, or attachments whose base64
    exceeds max_bytes, send the job to failed/ with the key named; nothing is queued."""
    province.start(PROVINCE, "\n[limits]\nmax_attachment_bytes = 3000\nmax_bytes = 10000\n")
    province.drop_job(
        PROVINCE, "one-too-large", {"to": [DEPARTMENT], "subject": "Tệp quá lớn"}, {"scan.pdf": b"x" * 3001}
    )
    province.drop_job(
        PROVINCE,
        "too-much-together",
        {"to": [DEPARTMENT], "subject": "Tổng quá lớn"},
        {f"part-{n}.pdf": b"x" * 2900 for n in range(3)},  # 8,700 bytes, 11,600 in base64
    )
    failed = province.agencies[PROVINCE].outbox / "failed"
    single = (
        wait_until(lambda: (failed / "one-too-large.error.txt").is_file(), "the first refusal")
        and (failed / "one-too-large.error.txt").read_text()
    )
    assert "INT800" in single and "one-too-large/scan.pdf" in single and "max_attachment_bytes" in single
    together = (
        wait_until(lambda: (failed / "too-much-together.error.txt").is_file(), "the second refusal")
        and (failed / "too-much-together.error.txt").read_text()
    )
    assert "11600 in base64" in together and "[limits] max_bytes" in together
    assert province.agencies[PROVINCE].service.process.poll() is None
    assert "message_queued" not in province.agencies[PROVINCE].service.event_names()


def test_a_file_far_over_the_limits_is_refused_without_being_read_whole(province):
    """A 400 MB file (sparse: it takes no disk) in a job folder: refused with the limit named,
    and the gateway never held it in memory, not even to recognise the entry."""
    agency = province.start(PROVINCE)
    outbox = agency.outbox
    hidden = outbox / ".huge"
    hidden.mkdir(parents=True)
    (hidden / "document.json").write_text(json.dumps({"to": [DEPARTMENT], "subject": "Tệp khổng lồ"}), encoding="utf-8")
    with (hidden / "scan.pdf").open("wb") as handle:
        handle.truncate(400 * 1024 * 1024)
    hidden.rename(outbox / "huge")
    error = outbox / "failed" / "huge.error.txt"
    wait_until(error.is_file, "the refusal")
    assert "max_attachment_bytes" in error.read_text(encoding="utf-8")
    status = Path(f"/proc/{agency.service.process.pid}/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    assert peak_kib < 200 * 1024, f"the gateway's peak memory reached {peak_kib // 1024} MiB"


def test_respond_right_after_the_folder_appears_waits_for_its_record(province):
    """The inbox folder is in place a moment before the database records the delivery (so a
    crash in between redelivers into the same folder). A document system answering at once
    must get its answer sent, not "no delivered document"; the demo caught this race."""
    import subprocess
    import sys
    import time

    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    province.drop_job(PROVINCE, "fast", {"to": [DEPARTMENT], "subject": "Trả lời ngay"}, {})
    department = province.agencies[DEPARTMENT]
    (received,) = wait_until(department.delivered, "the delivery")
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 1, "the 01")
    department.service.stop()
    with department.raw_db() as db:  # back to the moment between the folder and its record
        db.execute("UPDATE incoming SET state = 'listed' WHERE inbox_id = ?", (received["id"],))
    answering = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-m",
            "gateway",
            "respond",
            "--config",
            str(department.config),
            received["id"],
            "--code",
            "03",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # the record lands while respond waits for it
    with department.raw_db() as db:
        db.execute("UPDATE incoming SET state = 'delivered' WHERE inbox_id = ?", (received["id"],))
    _, err = answering.communicate(timeout=60)
    assert answering.returncode == 0, err
    province.start(DEPARTMENT)
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 2, "the 03 back at the sender")
    nothing = province.run("respond", "--config", str(department.config), "no-such-folder", "--code", "03")
    assert nothing.returncode == 2 and "no delivered document" in nothing.stderr


def test_a_recall_of_a_document_not_sent_yet_is_refused(province, tmp_path):
    """Found in review: a queued (or failed) document could be recalled; the 13 goes out with
    the statuses, apart from the documents, and reaching a recipient first it is refused there
    while the document is then delivered all the same."""
    config = str(province.agencies[PROVINCE].config)
    (tmp_path / "cv.txt").write_bytes(b"noi dung")
    queued = province.run(
        "send", "--config", config, "--to", DEPARTMENT, "--subject", "Chưa gửi", str(tmp_path / "cv.txt")
    )
    assert queued.returncode == 0, queued.stderr
    document_id = queued.stdout.strip().splitlines()[-1]
    result = province.run("recall", "--config", config, document_id, "--reason", "Nhầm")
    assert result.returncode == 2 and "is queued, not sent yet" in result.stderr and "abandon" in result.stderr
    with province.agencies[PROVINCE].store() as store:
        assert not [s for s in store.reports.outgoing_for_kind(MessageType.STATUS) if s.status_code == "13"]
