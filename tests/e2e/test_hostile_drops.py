"""What a document system (or whoever can write its drop folder) may leave there that intake
must refuse, once, naming the entry, while the rest of the folder is sent: a pipe or a device
where document.json belongs, JSON nested past the parser's depth, a link to the gateway's own
key, a status file naming no possible folder, an inbox folder whose record is gone (found in
review: the first two stopped intake for good, the link sent the key, the last two were
retried five times a second for ever)."""

from __future__ import annotations

import json
import os
import time

from tests.e2e.province import build_province, wait_until
from tests.e2e.test_status_files import drop_status

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def hidden_then_shown(outbox, name: str, make) -> None:
    hidden = outbox / f".{name}"
    hidden.mkdir()
    make(hidden)
    hidden.rename(outbox / name)


def test_hostile_drop_entries_are_refused_once_and_the_rest_is_sent(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        for code in province.agencies:
            province.start(code)
        sender, recipient = province.agencies[PROVINCE], province.agencies[DEPARTMENT]
        outbox = sender.outbox
        key = next(sender.folder.parent.glob(f"pki/{PROVINCE}.key"))
        good = json.dumps({"to": [DEPARTMENT], "subject": "Kèm khóa"}, ensure_ascii=False)
        hidden_then_shown(outbox, "pipe", lambda f: os.mkfifo(f / "document.json"))
        hidden_then_shown(outbox, "zero", lambda f: (f / "document.json").symlink_to("/dev/zero"))
        hidden_then_shown(outbox, "nested", lambda f: (f / "document.json").write_text("[" * 100_000))
        hidden_then_shown(
            outbox,
            "key-link",
            lambda f: ((f / "document.json").write_text(good, encoding="utf-8"), (f / "khoa.pem").symlink_to(key)),
        )
        drop_status(province, PROVINCE, "deep", "[" * 60_000)
        drop_status(province, PROVINCE, "long", {"answers": "x" * 300 + "/" + "y" * 300, "code": "03"})
        ghost = sender.inbox / "ghost"  # an inbox folder whose record is gone (a restore, say), an hour old
        ghost.mkdir(parents=True)
        (ghost / "document.json").write_text("{}", encoding="utf-8")
        os.utime(ghost / "document.json", (time.time() - 3600, time.time() - 3600))
        drop_status(province, PROVINCE, "ghost", {"answers": "ghost", "code": "03"})
        province.drop_job(PROVINCE, "cv-1", {"to": [DEPARTMENT], "subject": "Công văn thường"}, {"a.txt": b"abc"})
        failed = outbox / "failed"
        names = ["pipe", "zero", "nested", "key-link", "deep.status.json", "long.status.json", "ghost.status.json"]
        wait_until(lambda: all((failed / f"{name}.error.txt").is_file() for name in names), "every entry refused")
        said = {name: (failed / f"{name}.error.txt").read_text(encoding="utf-8") for name in names}
        assert "pipe/document.json" in said["pipe"] and "regular file" in said["pipe"]
        assert "zero/document.json" in said["zero"] and "regular file" in said["zero"]
        assert "nested/document.json" in said["nested"] and "nested too deeply" in said["nested"]
        assert "khoa.pem" in said["key-link"] and "not a regular file of the job folder" in said["key-link"]
        assert "deep.status.json" in said["deep.status.json"] and "not JSON" in said["deep.status.json"]
        assert "no delivered document" in said["long.status.json"]
        assert "no delivered document 'ghost'" in said["ghost.status.json"]
        # the plain one is delivered, and nothing else was: the key never left
        wait_until(lambda: len(recipient.delivered()) == 1, "the plain document delivered")
        assert recipient.delivered()[0]["subject"] == "Công văn thường"
        time.sleep(1.5)  # what is refused is said once, not retried five times a second
        log = (sender.folder / "gateway.log").read_text(encoding="utf-8")
        assert log.count('"intake_postponed"') == 0 and "Traceback" not in log
        assert [e for e in sender.service.events if e.get("event") == "intake_refused"].__len__() == len(names)
    finally:
        province.stop_all()
