"""The drop folder shared with the document system's own account, as the README installs it:
the gateway without privileges in the service's group, the document system a second account
in that group. Needs root to make the account and drop privileges; skipped elsewhere."""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.province import build_province, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
GROUP, DOCUMENT_SYSTEM = "edxgw-test", "qlvb-test"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("setpriv", "useradd", "groupadd", "runuser")),
    reason="needs root, setpriv and useradd to act as two accounts",
)


def accounts() -> None:
    """The service's group and the document system's account in it (made once per machine)."""
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    if subprocess.run(["id", DOCUMENT_SYSTEM], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", GROUP, DOCUMENT_SYSTEM],
            check=True,
        )


def drop_as_document_system(outbox: Path, name: str, umask: str, subject: str | None = None) -> None:
    job = json.dumps({"to": [DEPARTMENT], "subject": subject or f"Van ban {name}"})
    script = (
        f"umask {umask} && cd {outbox} && mkdir .{name} && printf '%s' '{job}' > .{name}/document.json"
        f" && printf 'scan' > .{name}/scan.pdf && mv .{name} {name}"
    )
    subprocess.run(["runuser", "-u", DOCUMENT_SYSTEM, "--", "sh", "-c", script], check=True)


@pytest.fixture
def shared_root():
    root = Path(tempfile.mkdtemp(prefix="edxgw-shared-", dir="/tmp"))  # reachable by the second account
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_document_systems_account_drops_documents_the_gateway_takes_and_removes(shared_root):
    accounts()
    province = build_province(shared_root / "province", [PROVINCE, DEPARTMENT])
    try:
        sender = province.agencies[PROVINCE]
        sender.config.write_text(sender.config.read_text().replace("housekeeping = 30.0", "housekeeping = 0.5"))
        # as the unit runs it: its own group, no capability to override file modes, UMask=0027
        unprivileged = (
            *("setpriv", f"--regid={GROUP}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"),
            *("sh", "-c", 'umask 0027 && exec "$@"', "sh"),
        )
        province.start(DEPARTMENT, wrapper=unprivileged)
        province.start(PROVINCE, wrapper=unprivileged)
        outbox = sender.outbox
        info = outbox.stat()
        assert stat.S_IMODE(info.st_mode) == 0o2770 and grp.getgrgid(info.st_gid).gr_name == GROUP

        drop_as_document_system(outbox, "careful", umask="0007")  # as docs/intake.md asks
        wait_until(lambda: len(province.agencies[DEPARTMENT].delivered()) == 1, "the first document")
        wait_until(lambda: not [p for p in outbox.iterdir() if p.name != "failed"], "the entry removed, no leftover")

        drop_as_document_system(outbox, "careless", umask="0022")  # the common default: not group-writable
        left = sender.service.wait_for(lambda e: e.get("event") == "intake_leftover", "the leftover said")
        assert "umask 0007" in left["hint"] and left["entry"] == ".taken-careless"
        wait_until(lambda: len(province.agencies[DEPARTMENT].delivered()) == 2, "the second document, sent")
        time.sleep(1.5)
        # the same name again: taken beside the leftover (intake tidies at that run, every
        # [workers] housekeeping, and says the leftover it cannot remove only once)
        drop_as_document_system(outbox, "careless", umask="0022", subject="Van ban careless, lan hai")
        wait_until(lambda: len(province.agencies[DEPARTMENT].delivered()) == 3, "the third document, sent")
        wait_until(lambda: sender.service.event_names().count("intake_leftover") == 2, "the second leftover said")
        names = sender.service.event_names()
        assert "worker_error" not in names and "intake_postponed" not in names
        leftovers = sorted(p.name for p in outbox.iterdir() if p.name.startswith(".taken-careless"))
        assert len(leftovers) == 2 and leftovers[0] == ".taken-careless", leftovers
        assert not (outbox / "careless").exists()
        # the recipient's document system reads what arrived and then takes it away
        inbox = province.agencies[DEPARTMENT].inbox
        for folder in [p for p in inbox.iterdir() if not p.name.startswith(".")]:
            script = f"cat {folder}/document.json && rm -r {folder}"
            taken = ["runuser", "-u", DOCUMENT_SYSTEM, "--", "sh", "-c", script]
            assert subprocess.run(taken, capture_output=True).returncode == 0, folder
        assert [p.name for p in inbox.iterdir() if not p.name.startswith(".")] == []
    finally:
        province.stop_all()
