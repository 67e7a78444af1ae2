"""A document system answers through the drop folder: NAME.status.json is `respond` without a shell."""

from __future__ import annotations

import json
import os
import time

from tests.e2e.province import build_province, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def drop_status(province, code: str, name: str, body: dict | str) -> None:
    outbox = province.agency(code).outbox
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    (outbox / f".{name}.status.json").write_text(text, encoding="utf-8")
    (outbox / f".{name}.status.json").rename(outbox / f"{name}.status.json")


def refusal(province, code: str, name: str) -> str:
    failed = province.agency(code).outbox / "failed"
    path = failed / f"{name}.status.json.error.txt"
    wait_until(path.is_file, f"{name} refused into failed/")
    return path.read_text(encoding="utf-8")


def test_status_files_answer_received_documents_and_bad_ones_are_refused_with_the_reason(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        for code in province.agencies:
            province.start(code)
        sender, recipient = province.agencies[PROVINCE], province.agencies[DEPARTMENT]
        province.drop_job(PROVINCE, "cv-1", {"to": [DEPARTMENT], "subject": "Công văn cần trả lời"}, {})
        wait_until(lambda: len(sender.receipts()) == 1, "the 01")
        folder = recipient.delivered()[0]["id"]
        document_id = recipient.delivered()[0]["document_id"]
        drop_status(province, DEPARTMENT, "tiep-nhan", {"answers": folder, "code": "03", "staff": "Văn thư"})
        drop_status(province, DEPARTMENT, "xong", {"answers": document_id, "code": "06", "description": "Đã xử lý"})
        wait_until(lambda: {r[2] for r in sender.receipts()} == {"01", "03", "06"}, "the 03 and the 06")
        assert not [p for p in recipient.outbox.iterdir() if p.name.endswith(".status.json")]

        drop_status(province, DEPARTMENT, "sau-06", {"answers": folder, "code": "03"})
        assert "03" in refusal(province, DEPARTMENT, "sau-06")
        drop_status(province, DEPARTMENT, "la", {"answers": folder, "code": "05", "priority": 1})
        assert "unknown keys priority" in refusal(province, DEPARTMENT, "la")
        drop_status(province, DEPARTMENT, "hong", "{not json")
        assert "not JSON" in refusal(province, DEPARTMENT, "hong")
        drop_status(province, DEPARTMENT, "khong-co", {"answers": "no-such-folder", "code": "03"})
        assert "no delivered document" in refusal(province, DEPARTMENT, "khong-co")
        assert len(sender.receipts()) == 3
    finally:
        province.stop_all()


def test_what_is_named_like_a_status_file_but_no_regular_file_is_refused_and_intake_goes_on(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        province.start(DEPARTMENT)
        outbox = province.agency(DEPARTMENT).outbox
        (outbox / ".thu-muc.status.json").mkdir()
        (outbox / ".thu-muc.status.json").rename(outbox / "thu-muc.status.json")
        assert "regular file" in refusal(province, DEPARTMENT, "thu-muc")
        # a pipe would block whoever opens it to read, until a writer comes: intake must not wait
        os.mkfifo(outbox / "ong.status.json")
        assert "regular file" in refusal(province, DEPARTMENT, "ong")
        os.mkfifo(outbox / "ong.edxml")
        wait_until((outbox / "failed" / "ong.edxml.error.txt").is_file, "the pipe named like an edXML file refused")
        target = tmp_path / "elsewhere.json"
        target.write_text(json.dumps({"answers": "x", "code": "03"}), encoding="utf-8")
        (outbox / "lien-ket.status.json").symlink_to(target)
        assert "regular file" in refusal(province, DEPARTMENT, "lien-ket")
        province.drop_job(DEPARTMENT, "sau-do", {"to": [PROVINCE], "subject": "Công văn sau đó"}, {})
        wait_until(lambda: not (outbox / "sau-do").exists(), "the job dropped after them taken")
    finally:
        province.stop_all()


def test_status_files_found_together_go_out_in_the_order_they_were_written(tmp_path):
    """Found in review: entries were taken in name order, so a 03 and a 06 written while the
    gateway was stopped could go out 06 first, and the 03 was then refused ("06 was already
    sent"). Written 03 first under a name that sorts last: both go out, 03 first."""
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        for code in province.agencies:
            province.start(code)
        sender, recipient = province.agencies[PROVINCE], province.agencies[DEPARTMENT]
        province.drop_job(PROVINCE, "cv-thu-tu", {"to": [DEPARTMENT], "subject": "Công văn"}, {})
        wait_until(lambda: len(sender.receipts()) == 1, "the 01")
        folder = recipient.delivered()[0]["id"]
        recipient.service.stop()
        drop_status(province, DEPARTMENT, "z-tiep-nhan", {"answers": folder, "code": "03"})
        earlier = time.time() - 30
        os.utime(recipient.outbox / "z-tiep-nhan.status.json", (earlier, earlier))
        drop_status(province, DEPARTMENT, "a-xong", {"answers": folder, "code": "06"})
        province.start(DEPARTMENT)
        wait_until(lambda: {r[2] for r in sender.receipts()} == {"01", "03", "06"}, "the 03 and the 06")
        assert not (recipient.outbox / "failed").exists() or not list((recipient.outbox / "failed").iterdir())
    finally:
        province.stop_all()
