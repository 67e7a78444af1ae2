"""An agency renews its certificate (issue 19, rotation): while the old one is still valid both
count; switching the gateway to the new key loses nothing in flight, and what it owes for
documents received under the old key is signed with the new one."""

from __future__ import annotations

from cryptography import x509

from gateway import edxml
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import build_province, free_port, job, wait_until

PROVINCE, DISTRICT = "000.00.00.H58", "000.00.31.H58"


def serial_of(province, code: str) -> str:
    certificate = x509.load_pem_x509_certificates((province.root / "pki" / f"{code}.pem").read_bytes())[0]
    return f"{certificate.serial_number:x}"


def test_a_renewed_certificate_takes_over_without_losing_what_is_in_flight(tmp_path):
    # a three-level PKI whose CRLs nobody serves: revocation "off" keeps this test about rotation
    province = build_province(tmp_path / "province", [PROVINCE, DISTRICT], crl_url=f"http://127.0.0.1:{free_port()}")
    try:
        for code in (PROVINCE, DISTRICT):
            agency = province.agencies[code]
            text = agency.config.read_text(encoding="utf-8").replace(
                'trust = "../pki/ca.pem"\n', 'trust = "../pki/ca.pem"\nrevocation = "off"\n'
            )
            agency.config.write_text(text, encoding="utf-8")
        old = serial_of(province, PROVINCE)
        sender = province.start(PROVINCE)
        # signed with the old key, waiting at the axis for a district that is not running
        province.drop_job(PROVINCE, "old-key", job("Văn bản 1", [DISTRICT]), {"a.txt": b"1"})
        sender.service.wait_for(lambda e: e.get("event") == "message_sent", "the first document at the axis")
        sender.service.stop()

        district = province.start(DISTRICT)
        # received by the province while it is switching: its 01 is owed under the new key
        province.drop_job(DISTRICT, "to-province", job("Văn bản 2", [PROVINCE]), {"b.txt": b"2"})
        district.service.wait_for(lambda e: e.get("event") == "message_sent", "the district's document at the axis")

        renewed = province.run("pki", "issue", "--dir", str(province.root / "pki"), "--agency", PROVINCE)
        assert renewed.returncode == 0, renewed.stderr
        new = serial_of(province, PROVINCE)
        assert new != old
        sender = province.start(PROVINCE)
        province.drop_job(PROVINCE, "new-key", job("Văn bản 3", [DISTRICT]), {"c.txt": b"3"})

        delivered = wait_until(lambda: len(district.delivered()) == 2 and district.delivered(), "both documents")
        by_subject = {d["subject"]: d["signature"] for d in delivered}
        assert by_subject["Văn bản 1"]["certificate"]["serial"] == old  # still valid: it counts
        assert by_subject["Văn bản 3"]["certificate"]["serial"] == new
        assert all(s["state"] == "valid" for s in by_subject.values())
        (received,) = wait_until(sender.delivered, "the district's document at the province")
        assert received["subject"] == "Văn bản 2"
        wait_until(lambda: [r for r in district.receipts() if r[2] == "01"], "the province's 01 at the district")
        # the 01 the province owed was signed with the new key, and the district took it
        trust = edxml.TrustStore.from_pem((province.root / "pki" / "ca.pem").read_bytes())
        with sender.store() as store:
            (answer,) = store.reports.outgoing_for_kind(MessageType.STATUS)
            status = edxml.validate(store.outgoing.signed(answer), trust=trust)
        assert isinstance(status.message, edxml.StatusMessage)
        assert f"{status.signature.certificate.serial_number:x}" == new
        wait_until(lambda: len(sender.receipts()) == 2 or None, "the district's two 01s at the province")
    finally:
        province.stop_all()
