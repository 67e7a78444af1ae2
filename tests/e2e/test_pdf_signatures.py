"""The signed PDF itself (issue 19), end to end: documents carrying PDFs signed by `pki
sign-pdf` (one altered after signing) reach a recipient that reports and one that requires
valid PDF signatures. Real processes: the axis, three gateways, a CRL server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from gateway.pdfsig.signing import alter_after_signing, sample_pdf, sign_pdf
from gateway.processes import Service
from tests.e2e.province import build_province, free_port, job, rejections, wait_until

PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"


def test_pdf_signatures_are_reported_in_the_inbox_and_required_where_asked(tmp_path):
    port = free_port()
    province = build_province(
        tmp_path / "province", [PROVINCE, DEPARTMENT, DISTRICT], crl_url=f"http://127.0.0.1:{port}"
    )
    crls = Service(
        ["pki", "serve", "--dir", str(province.root / "pki"), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        log_path=tmp_path / "crl.log",
    )
    try:
        crls.wait_for(lambda e: e.get("event") == "crl_serving", "the CRL server")
        department = province.agencies[DEPARTMENT]
        text = department.config.read_text(encoding="utf-8")
        trust = 'trust = "../pki/ca.pem"\n'
        department.config.write_text(text.replace(trust, f'{trust}pdf_signatures = "require"\n'), encoding="utf-8")
        for code in (PROVINCE, DEPARTMENT, DISTRICT):
            province.start(code)
        pki = province.root / "pki"
        key, cert = (pki / f"{PROVINCE}.key").read_bytes(), (pki / f"{PROVINCE}.pem").read_bytes()
        signed = sign_pdf(sample_pdf("Quyet dinh 12/QD-UBND"), key, cert)
        altered = alter_after_signing(sign_pdf(sample_pdf("Quyet dinh 13/QD-UBND"), key, cert))
        province.drop_job(
            PROVINCE,
            "with-altered",
            job("Văn bản 1", [DEPARTMENT, DISTRICT]),
            {"Quyết định 12.pdf": signed, "Quyết định 13.pdf": altered, "ghi-chu.txt": b"notes"},
        )
        province.drop_job(PROVINCE, "all-signed", job("Văn bản 2", [DEPARTMENT]), {"Quyết định 12.pdf": signed})

        district = province.agencies[DISTRICT]
        (reported,) = wait_until(district.delivered, "the document at the district (report)")
        by_name = {a["name"]: a for a in reported["attachments"]}
        (good,) = by_name["Quyết định 12.pdf"]["pdf_signatures"]
        assert by_name["Quyết định 12.pdf"]["pdf_signed_validly"] is True
        assert (good["agency"], good["intact"], good["covers_whole_file"], good["trusted"], good["revoked"]) == (
            PROVINCE,
            True,
            True,
            True,
            False,
        )
        assert good["signer"] and good["signed_at"]
        (changed,) = by_name["Quyết định 13.pdf"]["pdf_signatures"]
        assert changed["intact"] and not changed["covers_whole_file"] and not changed["valid"]
        assert by_name["Quyết định 13.pdf"]["pdf_signed_validly"] is False
        assert "pdf_signatures" not in by_name["ghi-chu.txt"]
        checked = district.service.events_where(lambda e: e.get("event") == "pdf_checked")
        assert sorted(e["valid"] for e in checked) == [False, True]

        (delivered,) = wait_until(department.delivered, "the all-signed document at the department (require)")
        assert delivered["subject"] == "Văn bản 2"
        (reason,) = wait_until(lambda: rejections(department.inbox), "the altered one refused")
        assert "PDF signature required" in reason and "Quyết định 13.pdf" in reason and "changed after" in reason
        wait_until(
            lambda: any(r[1] == DEPARTMENT and r[2] == "02" for r in province.agencies[PROVINCE].receipts()),
            "the 02 at the province",
        )
        # the quarterly report counts the documents whose PDFs carried valid signatures
        today = datetime.now(timezone(timedelta(hours=7))).date().isoformat()
        for agency, signed, not_signed in ((district, 0, 1), (department, 1, 0)):
            done = province.run(
                "report", "--config", str(agency.config), "--from", today, "--to", today, "--format", "json"
            )
            assert done.returncode == 0, done.stderr
            received = json.loads(done.stdout)["received"]
            assert (received["with_validly_signed_pdfs"], received["with_pdfs_not_validly_signed"]) == (
                signed,
                not_signed,
            )
    finally:
        crls.stop()
        province.stop_all()
