"""Revocation end to end (issue 19): a province whose certificates come from a three-level PKI
naming its CRLs, published by a real `edxml-gateway pki serve`; gateways and axis as real
processes. What counts is whether the certificate was revoked before the axis accepted the
message."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.processes import Service
from tests.e2e.province import Province, build_province, free_port, job, rejections, wait_until

PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"


def revocation(province: Province, code: str, policy: str) -> None:
    agency = province.agencies[code]
    text = agency.config.read_text(encoding="utf-8")
    trust = 'trust = "../pki/ca.pem"\n'
    agency.config.write_text(text.replace(trust, f'{trust}revocation = "{policy}"\n'), encoding="utf-8")


def sent(province: Province, code: str, count: int) -> None:
    """Wait until the axis has accepted ``count`` documents of ``code``."""
    service = province.agencies[code].service
    wait_until(
        lambda: (
            len(service.events_where(lambda e: e.get("event") == "message_sent" and e.get("kind") == "edoc")) >= count
        ),
        f"{count} document(s) of {code} accepted by the axis",
    )


def serve_crls(province: Province, port: int, folder: Path) -> Service:
    crls = Service(
        ["pki", "serve", "--dir", str(province.root / "pki"), "--listen", f"127.0.0.1:{port}"],
        cwd=folder,
        log_path=folder / "crl.log",
    )
    crls.wait_for(lambda e: e.get("event") == "crl_serving", "the CRL server")
    return crls


def test_revoked_before_the_axis_accepted_is_refused_with_02_revoked_after_is_delivered(tmp_path):
    port = free_port()
    province = build_province(
        tmp_path / "province", [PROVINCE, DISTRICT], axis_port=free_port(), crl_url=f"http://127.0.0.1:{port}"
    )
    crls = serve_crls(province, port, tmp_path)
    try:
        # an axis that does not look at revocation (as the national one need not): the recipient must
        province.restart_axis('revocation = "off"')
        revocation(province, DISTRICT, "hard")
        province.start(PROVINCE)  # the district is not running yet: both documents wait at the axis
        province.drop_job(PROVINCE, "before", job("Văn bản 1", [DISTRICT]), {"a.txt": b"1"})
        sent(province, PROVINCE, 1)
        time.sleep(2)  # a CRL dates a revocation to the second, judged within a second's tolerance
        revoked = province.run("pki", "revoke", "--dir", str(province.root / "pki"), "--agency", PROVINCE)
        assert revoked.returncode == 0, revoked.stderr
        time.sleep(2)
        province.drop_job(PROVINCE, "after", job("Văn bản 2", [DISTRICT]), {"a.txt": b"2"})
        sent(province, PROVINCE, 2)

        district = province.start(DISTRICT)
        (delivered,) = wait_until(district.delivered, "the document signed before the revocation")
        assert delivered["subject"] == "Văn bản 1"
        # what the clerk's system reads: not revoked when the axis accepted it
        assert delivered["signature"]["revocation"]["state"] == "good"
        (reason,) = wait_until(lambda: rejections(district.inbox), "the document signed after it, refused")
        assert "SIG210" in reason and "revoked" in reason and PROVINCE in reason
        receipts = wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 2 or None, "01 and 02 back")
        assert receipts
        with province.agencies[PROVINCE].store() as store:
            answers = sorted((r.status_code, r.description or "") for _, r in store.reports.statuses_received())
        assert [code for code, _ in answers] == ["01", "02"]
        assert "SIG210" in answers[1][1]
        fetched = district.service.events_where(lambda e: e.get("event") == "crl_fetched")
        assert {e["url"].rsplit("/", 1)[1] for e in fetched} == {"intermediate.crl", "root.crl"}
    finally:
        crls.stop()
        province.stop_all()


def test_with_no_crl_to_be_had_soft_delivers_hard_waits_then_refuses_at_the_deadline(tmp_path):
    port = free_port()  # nothing will listen there
    province = build_province(
        tmp_path / "province", [PROVINCE, DEPARTMENT, DISTRICT], crl_url=f"http://127.0.0.1:{port}"
    )
    try:
        revocation(province, DEPARTMENT, "soft")
        revocation(province, DISTRICT, "hard")
        district = province.agencies[DISTRICT]
        # a deadline of 9 s instead of 72 h: the CA's server stays down past it
        text = district.config.read_text(encoding="utf-8").replace("deadline_hours = 1.0", "deadline_hours = 0.0025")
        district.config.write_text(text, encoding="utf-8")
        for code in (PROVINCE, DEPARTMENT, DISTRICT):
            province.start(code)
        province.drop_job(PROVINCE, "unknown", job("Văn bản 3", [DEPARTMENT, DISTRICT]), {"a.txt": b"3"})
        department = province.agencies[DEPARTMENT]
        (delivered,) = wait_until(department.delivered, "delivery under soft")
        assert delivered["subject"] == "Văn bản 3"
        # delivered under soft, and the inbox says the status was unknown, with why
        judged = delivered["signature"]["revocation"]
        assert judged["state"] == "unknown" and "cannot be fetched" in judged["detail"]
        (said,) = department.service.events_where(lambda e: e.get("event") == "revocation_unknown")
        assert "cannot be fetched" in said["reason"] and said["peer"] == PROVINCE
        # hard: a passing outage of the CA's server does not refuse the document at once
        district.service.wait_for(lambda e: e.get("event") == "revocation_pending", "the document to wait")
        assert rejections(district.inbox) == [] and district.delivered() == []
        (reason,) = wait_until(lambda: rejections(district.inbox), "refusal at the deadline")
        assert "SIG211" in reason and "cannot be fetched" in reason
        assert district.delivered() == []
    finally:
        province.stop_all()


def test_an_axis_that_verifies_refuses_a_revoked_signer_at_the_door(tmp_path):
    port = free_port()
    province = build_province(tmp_path / "province", [PROVINCE, DISTRICT], crl_url=f"http://127.0.0.1:{port}")
    crls = serve_crls(province, port, tmp_path)
    try:
        revoked = province.run("pki", "revoke", "--dir", str(province.root / "pki"), "--agency", PROVINCE)
        assert revoked.returncode == 0, revoked.stderr
        sender = province.start(PROVINCE)
        province.start(DISTRICT)
        province.drop_job(PROVINCE, "revoked", job("Văn bản 4", [DISTRICT]), {"a.txt": b"4"})
        failed = sender.service.wait_for(lambda e: e.get("event") == "message_failed", "the axis's refusal")
        assert "SIG210" in failed["reason"] and "revoked" in failed["reason"]
        assert province.agencies[DISTRICT].delivered() == []
    finally:
        crls.stop()
        province.stop_all()
