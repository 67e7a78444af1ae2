"""The drop folder shared with the document system's own account, as the README installs it:
the gateway without privileges in the service's group and the exchange group, the document
system a second account in the exchange group only (the service's group reads the keys).
Needs root to make the account and drop privileges; skipped elsewhere."""

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
# the service's group (edxml-gateway), the folders' (edxml-exchange), the document system's account
GROUP, EXCHANGE, DOCUMENT_SYSTEM = "edxgw-test", "edxex-test", "qlvb-test"
# as the unit runs the gateway: its group and the exchange group, no capability to override
# file modes, UMask=0027
AS_THE_UNIT = (
    *("setpriv", f"--regid={GROUP}", f"--groups={EXCHANGE}", "--inh-caps=-all", "--bounding-set=-all"),
    *("sh", "-c", 'umask 0027 && exec "$@"', "sh"),
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("setpriv", "useradd", "groupadd", "runuser")),
    reason="needs root, setpriv and useradd to act as two accounts",
)


def accounts() -> None:
    """The two groups, and the document system's account in the exchange group only (made once
    per machine; its groups set again, in case an earlier version put it in the service's)."""
    for group in (GROUP, EXCHANGE):
        if subprocess.run(["getent", "group", group], capture_output=True).returncode != 0:
            subprocess.run(["groupadd", "--system", group], check=True)
    if subprocess.run(["id", DOCUMENT_SYSTEM], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DOCUMENT_SYSTEM], check=True
        )
    subprocess.run(["usermod", "-G", EXCHANGE, DOCUMENT_SYSTEM], check=True)


def shared_folders(*folders: Path) -> None:
    """The outbox and inbox as the README makes them: setgid, group-writable, the exchange group's."""
    for folder in folders:
        folder.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["install", "-d", "-o", "root", "-g", EXCHANGE, "-m", "2770", str(folder)], check=True)


def as_document_system(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", DOCUMENT_SYSTEM, "--", *command], capture_output=True)


def drop_as_document_system(outbox: Path, name: str, umask: str, subject: str | None = None) -> None:
    job = json.dumps({"to": [DEPARTMENT], "subject": subject or f"Van ban {name}"})
    script = (
        f"umask {umask} && cd {outbox} && mkdir .{name} && printf '%s' '{job}' > .{name}/document.json"
        f" && printf 'scan' > .{name}/scan.pdf && mv .{name} {name}"
    )
    done = as_document_system("sh", "-c", script)
    assert done.returncode == 0, done.stderr


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
        for code in (PROVINCE, DEPARTMENT):
            shared_folders(province.agencies[code].outbox, province.agencies[code].inbox)
        province.start(DEPARTMENT, wrapper=AS_THE_UNIT)
        province.start(PROVINCE, wrapper=AS_THE_UNIT)
        outbox = sender.outbox
        info = outbox.stat()
        assert stat.S_IMODE(info.st_mode) == 0o2770 and grp.getgrgid(info.st_gid).gr_name == EXCHANGE
        failed = outbox / "failed"  # what the gateway makes in a shared folder belongs to the exchange group
        wait_until(failed.is_dir, "outbox/failed")
        assert grp.getgrgid(failed.stat().st_gid).gr_name == EXCHANGE

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
            taken = as_document_system("sh", "-c", f"cat {folder}/document.json && rm -r {folder}")
            assert taken.returncode == 0, (folder, taken.stderr)
        assert [p.name for p in inbox.iterdir() if not p.name.startswith(".")] == []
    finally:
        province.stop_all()
