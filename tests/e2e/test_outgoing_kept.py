"""Where a signed outgoing message is kept: a small one (a status, a short document) in the
database with its row, committed with it; a large one in a file of its own, fsynced before
its row commits. Both go out, and a command reads either."""

from __future__ import annotations

import hashlib

from gateway import edxml
from gateway.daemon.outgoing import KEPT_IN_DATABASE_BYTES
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import job, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def _noise(size: int) -> bytes:
    """Bytes that compress to nothing smaller: a scan, as far as base64 and lxml care."""
    return b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(size // 32 + 1))[:size]


def test_small_messages_are_kept_in_the_database_and_large_ones_in_files(province):
    sender = province.start(PROVINCE)
    recipient = province.start(DEPARTMENT)
    scan = _noise(KEPT_IN_DATABASE_BYTES)  # a third more as base64: over the line
    province.drop_job(PROVINCE, "nho", job("Văn bản nhỏ", [DEPARTMENT]), {"to-trinh.txt": b"ngan"})
    province.drop_job(PROVINCE, "lon", job("Văn bản lớn", [DEPARTMENT]), {"ban-quet.pdf": scan})

    delivered = wait_until(lambda: len(recipient.delivered()) == 2 and recipient.delivered(), "both documents")
    large = next(d for d in delivered if d["subject"] == "Văn bản lớn")
    assert (recipient.inbox / large["id"] / "attachments" / "ban-quet.pdf").read_bytes() == scan
    wait_until(lambda: len(sender.receipts()) == 2 or None, "both 01s back")

    trust = edxml.TrustStore.from_pem((province.root / "pki" / "ca.pem").read_bytes())
    with sender.store() as store:
        by_subject = {o.subject: o for o in store.reports.outgoing_for_kind(MessageType.EDOC)}
        small, big = by_subject["Văn bản nhỏ"], by_subject["Văn bản lớn"]
        assert small.file == "" and small.id in store.outgoing.kept([small.id, big.id])
        assert big.id not in store.outgoing.kept([small.id, big.id])
        assert [p.name for p in store.outgoing_dir.iterdir()] == [big.file]
        for item in (small, big):  # what a command (recall) reads, wherever it is kept
            assert edxml.validate(store.outgoing.signed(item), trust=trust).message.subject == item.subject
    with recipient.store() as store:
        answers = store.reports.outgoing_for_kind(MessageType.STATUS)
        assert sorted(a.status_code for a in answers) == ["01", "01"]
        assert set(store.outgoing.kept([a.id for a in answers])) == {a.id for a in answers}
        assert not list(store.outgoing_dir.iterdir())  # no file, no fsync of its own, for an 01
