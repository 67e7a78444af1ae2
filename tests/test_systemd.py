"""The service units pass `systemd-analyze verify` (skipped where systemd is absent)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNITS = sorted((REPO / "systemd").glob("*.service"))
INSTALLED = "/opt/edxml-gateway/venv/bin/edxml-gateway"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path):
    # verify insists that ExecStart exists: point it at this test run's console script
    executable = Path(sys.executable).with_name("edxml-gateway")
    text = unit.read_text(encoding="utf-8")
    assert INSTALLED in text
    (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(executable)), encoding="utf-8")
    # a template is verified as one of its instances
    target = unit.name.replace("@.", "@000.00.11.H58.") if "@." in unit.name else unit.name
    if target != unit.name:
        (tmp_path / unit.name).rename(tmp_path / target)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert target not in result.stderr, result.stderr  # no warning about our unit either


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
