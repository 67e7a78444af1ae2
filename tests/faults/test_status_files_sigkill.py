"""SIGKILL the recipient's gateway while it takes status files from its drop folder: every
status is sent, once."""

from __future__ import annotations

import random
import time

from tests.e2e.province import build_province, free_port, wait_until
from tests.e2e.test_status_files import drop_status

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
DOCUMENTS = 40


def test_status_files_survive_sigkills_and_are_sent_once(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], axis_port=free_port())
    try:
        for code in province.agencies:
            province.start(code)
        sender, recipient = province.agencies[PROVINCE], province.agencies[DEPARTMENT]
        for n in range(DOCUMENTS):
            province.drop_job(PROVINCE, f"cv-{n:03d}", {"to": [DEPARTMENT], "subject": f"Công văn {n}"}, {})
        wait_until(lambda: len(sender.receipts()) == DOCUMENTS, "every 01")
        for document in recipient.delivered():
            drop_status(province, DEPARTMENT, document["id"], {"answers": document["id"], "code": "03"})
        rng = random.Random(5)
        kills = 0

        def all_answered() -> bool:
            return sum(r[2] == "03" for r in sender.receipts()) >= DOCUMENTS

        while kills < 6 and not all_answered():
            time.sleep(rng.uniform(0.05, 0.4))
            recipient.service.kill()
            kills += 1
            province.start(DEPARTMENT)
        wait_until(all_answered, "a 03 for every document", timeout=120)
        time.sleep(1.0)  # a status sent twice would show up now
        answers = [r for r in sender.receipts() if r[2] == "03"]
        assert kills >= 1
        assert len(answers) == DOCUMENTS and len({r[0] for r in answers}) == DOCUMENTS
        outbox = recipient.outbox
        assert [p.name for p in outbox.iterdir()] == ["failed"] and not list((outbox / "failed").iterdir())
    finally:
        province.stop_all()
