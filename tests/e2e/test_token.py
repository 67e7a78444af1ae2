"""A whole exchange with the province's key on a SoftHSM2 token (issue 19): its documents and
its 01s are signed on the token; the token pulled out while the gateway runs makes what is to
be signed wait, and nothing is lost or refused for it; put back, it all goes out, once."""

from __future__ import annotations

import shutil

from tests.e2e.province import build_province, job, wait_until
from tests.softhsm import make_token

PROVINCE, DISTRICT = "000.00.00.H58", "000.00.31.H58"


def test_an_exchange_signed_on_a_token_survives_the_token_pulled_out(tmp_path):
    province = build_province(tmp_path / "province", [PROVINCE, DISTRICT])
    try:
        key = province.root / "pki" / f"{PROVINCE}.key"
        token = make_token(tmp_path / "hsm", "ubnd-tinh", {"van-thu": key})
        key.unlink()  # on the token now, and only there
        agency = province.agencies[PROVINCE]
        text = agency.config.read_text(encoding="utf-8").replace(f'key = "../pki/{PROVINCE}.key"\n', "")
        agency.config.write_text(text + token.toml("van-thu"), encoding="utf-8")
        sender = province.start(PROVINCE, env=token.env)
        district = province.start(DISTRICT)

        province.drop_job(PROVINCE, "first", job("Văn bản 1", [DISTRICT]), {"a.txt": b"1"})
        (delivered,) = wait_until(district.delivered, "the first document")
        assert (delivered["signature"]["state"], delivered["signature"]["signer"]) == ("valid", PROVINCE)
        province.drop_job(DISTRICT, "answer", job("Văn bản 2", [PROVINCE]), {"b.txt": b"2"})
        wait_until(sender.delivered, "the district's document at the province")
        # the province's 01, signed on the token, verified at the district
        wait_until(lambda: [r for r in district.receipts() if r[2] == "01"], "the province's 01")

        # the token pulled out: the next document waits in the drop folder, signed once it is back
        pulled = tmp_path / "pulled-out"
        shutil.move(str(token.tokens), pulled)
        province.drop_job(PROVINCE, "while-out", job("Văn bản 3", [DISTRICT]), {"c.txt": b"3"})
        postponed = sender.service.wait_for(
            lambda e: e.get("event") == "intake_postponed" and "PKI301" in e.get("reason", ""), "intake to wait"
        )
        assert postponed["entry"] == "while-out"
        assert (agency.outbox / "while-out").is_dir()
        assert not any((agency.outbox / "failed").glob("*"))  # not refused for it
        # a document arriving meanwhile owes a 01 that cannot be signed: it waits at the axis
        province.drop_job(DISTRICT, "to-pulled", job("Văn bản 4", [PROVINCE]), {"d.txt": b"4"})
        sender.service.wait_for(
            lambda e: e.get("event") == "delivery_failed" and e.get("code") == "PKI301", "delivery to wait"
        )
        shutil.move(str(pulled), token.tokens)
        wait_until(lambda: len(district.delivered()) == 2 or None, "the document signed once the token is back")
        assert sorted(d["subject"] for d in district.delivered()) == ["Văn bản 1", "Văn bản 3"]
        assert not (agency.outbox / "while-out").exists()
        wait_until(lambda: len(sender.delivered()) == 2 or None, "the document that waited for its 01")
        assert sorted(d["subject"] for d in sender.delivered()) == ["Văn bản 2", "Văn bản 4"]
        wait_until(lambda: len([r for r in district.receipts() if r[2] == "01"]) == 2 or None, "both 01s")
        assert not any((sender.inbox / ".rejected").glob("*"))
        # every signature was asked of the token from a worker thread, none from the event loop
        assert "token_signed_on_event_loop" not in sender.service.event_names()
    finally:
        province.stop_all()
