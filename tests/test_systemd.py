"""The service units pass `systemd-analyze verify` (skipped where systemd is absent)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

UNITS = sorted((REPO / "systemd").glob("*.service"))
INSTALLED = "/opt/edxml-gateway/venv/bin/edxml-gateway"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


@pytest.fixture
def installed() -> Iterator[None]:
    """The console script where the README's install puts it, for the time of one test: made
    (as a link to this run's) only when absent, and taken away after; elsewhere, skipped. Tests
    in parallel processes take turns (a lock file), so none removes it under another."""
    target = Path(INSTALLED)
    with open("/tmp/edxml-gateway-units.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            yield
            return
        if os.geteuid() != 0:
            pytest.skip(f"{INSTALLED} is absent and only root may put it there")
        made = [p for p in (target.parents[2], target.parents[1], target.parent) if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path(sys.executable).with_name("edxml-gateway"))
        try:
            yield
        finally:
            target.unlink()
            for folder in reversed(made):
                folder.rmdir()


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies_exactly_as_shipped(unit: Path, tmp_path: Path, installed: None):
    # a template is verified as one of its instances, under the name systemctl would give it
    target = unit.name.replace("@.", "@000.00.11.H58.") if "@." in unit.name else unit.name
    (tmp_path / target).write_bytes(unit.read_bytes())
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert target not in result.stderr, result.stderr  # no warning about our unit either


def test_the_readme_installs_what_the_units_use():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8")
        assert INSTALLED in text
        for documentation in re.findall(r"Documentation=file:///opt/edxml-gateway/(\S+)", text):
            installed_as = documentation.split("/")[0]  # README.md, or a file of docs/
            assert f"/opt/edxml-gateway/{installed_as}" in readme or f"cp -r {installed_as}" in readme, documentation
            assert (REPO / documentation).is_file(), documentation
        # a configuration that cannot start is not restarted for ever
        assert "RestartPreventExitStatus=78" in text and "StartLimitBurst=" in text
        assert "docs/operations.md" not in text


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_is_hardened(unit: Path):
    text = unit.read_text(encoding="utf-8")
    for directive in (
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=",
        "Restart=on-failure",
        "StateDirectory=",
    ):
        assert directive in text, f"{unit.name} lacks {directive}"
    assert "DynamicUser=yes" in text or "User=" in text
