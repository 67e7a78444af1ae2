"""Documents travel from one agency's drop folder to others' inboxes, and statuses come back."""

from __future__ import annotations

import json

from tests.e2e.conftest import wait_until

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
        assert received["signature"] == {"state": "valid", "signer": PROVINCE}
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
