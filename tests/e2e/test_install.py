"""The README's "Installing as a service", followed step by step on this machine: its commands
run as written (under a scratch root instead of /), the agency's files where the table says,
then the gateway started as the unit starts it (its group, no privileges, UMask=0027) and the
document system dropping a document as a second account. Needs root; skipped elsewhere."""

from __future__ import annotations

import grp
import re
import shlex
import stat
import subprocess
import sys

from gateway.processes import Service
from tests.conftest import REPO
from tests.e2e.province import build_province, wait_until
from tests.e2e.test_shared_folders import (
    AS_THE_UNIT,
    EXCHANGE,
    GROUP,
    accounts,
    as_document_system,
    drop_as_document_system,
    shared_root,  # noqa: F401 - a fixture used below
)
from tests.e2e.test_shared_folders import pytestmark as two_accounts

pytestmark = two_accounts

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
# Steps of the block that this machine stands in for: the venv is this test run's environment,
# the account is GROUP, systemd is the unit's settings applied by hand below.
STOOD_IN_FOR = ("python3 -m venv", "/pip install", "useradd", "groupadd", "usermod", "ln -s", "systemd/", "systemctl")
GROUPS = {"edxml-gateway": GROUP, "edxml-exchange": EXCHANGE}  # the README's groups, as this machine has them


def readme_install_steps() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Installing as a service") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    steps = []
    for line in block.strip().splitlines():
        command = line.split("  #")[0].strip()
        assert command.startswith("sudo "), line
        if not any(marker in command for marker in STOOD_IN_FOR):
            steps.append(shlex.split(command)[1:])
    return steps


def test_the_readme_install_section_works_as_written(shared_root):  # noqa: F811 - the fixture
    accounts()
    root = shared_root / "root"  # stands for /
    province = build_province(shared_root / "province", [PROVINCE, DEPARTMENT])
    try:
        province.start(DEPARTMENT)
        steps = readme_install_steps()
        assert any(step[0] == "install" and "/etc/edxml-gateway" in step for step in steps)
        for step in steps:
            under_root = [re.sub(r"^/(etc|opt|var)/", lambda m: f"{root}/{m.group(1)}/", arg) for arg in step]
            # the service's account is this test's root without privileges, its group GROUP
            owner = {i + 1 for i, arg in enumerate(under_root) if arg == "-o"}
            mapped = [
                ("root" if i in owner else GROUPS[arg]) if arg in GROUPS else arg for i, arg in enumerate(under_root)
            ]
            subprocess.run(mapped, cwd=REPO, check=True)
        etc = root / "etc" / "edxml-gateway"
        info = etc.stat()
        assert stat.S_IMODE(info.st_mode) == 0o750 and grp.getgrgid(info.st_gid).gr_name == GROUP
        assert (root / "opt" / "edxml-gateway" / "README.md").is_file()
        assert (root / "opt" / "edxml-gateway" / "docs" / "intake.md").is_file()
        shared = root / "var" / "lib" / "edxml-gateway" / "outbox"
        assert stat.S_IMODE(shared.stat().st_mode) == 0o2770 and grp.getgrgid(shared.stat().st_gid).gr_name == EXCHANGE

        # what the agency brings, where the README's table puts it: root:edxml-gateway, 0640
        pki = province.root / "pki"
        brought = {
            "agency.key": pki / f"{PROVINCE}.key",
            "agency.pem": pki / f"{PROVINCE}.pem",
            "ca.pem": pki / "ca.pem",
            "axis.secret": province.agencies[PROVINCE].folder / "secret.txt",
        }
        for name, source in brought.items():
            placed = ["install", "-o", "root", "-g", GROUP, "-m", "0640", str(source), str(etc / name)]
            subprocess.run(placed, check=True)
        state = root / "var" / "lib" / "edxml-gateway"  # StateDirectory=, as systemd makes it
        unit = (REPO / "systemd" / "edxml-gateway.service").read_text(encoding="utf-8")
        assert "StateDirectoryMode=0751" in unit
        subprocess.run(["install", "-d", "-o", "root", "-g", GROUP, "-m", "0751", str(state)], check=True)
        config = etc / "gateway.toml"
        text = config.read_text(encoding="utf-8")
        for old, new in (
            ('url = "http://127.0.0.1:8780"', f'url = "{province.axis.url}"'),
            ('system_id = "sys-h58"', f'system_id = "sys-{PROVINCE}"'),
            ('secret_file = "secret.txt"', f'secret_file = "{etc / "axis.secret"}"'),
            (f'key = "pki/{PROVINCE}.key"', f'key = "{etc / "agency.key"}"'),
            (f'cert = "pki/{PROVINCE}.pem"', f'cert = "{etc / "agency.pem"}"'),
            ('trust = "pki/ca.pem"', f'trust = "{etc / "ca.pem"}"'),
            ('data_dir = "var"', f'data_dir = "{state / "var"}"'),
            ('outbox = "outbox"', f'outbox = "{state / "outbox"}"'),
            ('inbox = "inbox"', f'inbox = "{state / "inbox"}"'),
        ):
            assert old in text, old
            text = text.replace(old, new)
        config.write_text(text, encoding="utf-8")  # "then edit it": the mode stays 0640
        assert stat.S_IMODE(config.stat().st_mode) == 0o640

        # as the unit runs it: its groups, no capability, UMask=0027, WorkingDirectory= the state
        assert "UMask=0027" in unit and "WorkingDirectory=/var/lib/edxml-gateway" in unit
        as_unit = AS_THE_UNIT
        service = Service(
            ["run", "--config", str(config)], cwd=state, log_path=shared_root / "installed.log", wrapper=as_unit
        )
        try:
            service.wait_for(lambda e: e.get("event") == "gateway_started", "the installed gateway")
            drop_as_document_system(state / "outbox", "installed", umask="0007")
            wait_until(lambda: province.agencies[DEPARTMENT].delivered(), "the document at the recipient")
            health = [*as_unit, sys.executable, "-P", "-m", "gateway", "health", "--config", str(config)]
            wait_until(lambda: subprocess.run(health, capture_output=True).returncode == 0, "an OK health report")
            assert [p.name for p in (state / "outbox").iterdir()] == ["failed"]
            # the document system reaches its two folders and nothing else: not the keys, the
            # axis secret, the configuration or the database (found in review: the README put it
            # in the service's group, which reads them all)
            assert as_document_system("ls", str(state / "inbox")).returncode == 0
            for secret in (etc / "agency.key", etc / "axis.secret", etc / "gateway.toml", state / "var"):
                assert as_document_system("cat", str(secret)).returncode != 0, secret
            assert as_document_system("ls", str(state / "var")).returncode != 0
        finally:
            service.stop()
    finally:
        province.stop_all()
