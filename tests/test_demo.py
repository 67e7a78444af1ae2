"""`edxml-gateway demo`: the README's first command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from gateway.processes import Service


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "demo", *args], capture_output=True, text=True, timeout=300)


def test_demo_keeps_a_real_deployment_when_asked(tmp_path):
    workdir = tmp_path / "province"
    result = demo("--docs", "6", "--workdir", str(workdir), "--keep")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every document reached its final state" in result.stdout
    assert "refused (02) by 000.00.11.H58" in result.stdout
    for code in ("000.00.00.G22", "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"):
        assert (workdir / code / "gateway.toml").is_file() and (workdir / code / "var" / "gateway.sqlite3").is_file()
    # the huyện's installation hosts its xã and phòng: a xã's inbox is the installation's
    for code in ("000.01.31.H58",):
        inbox = workdir / "000.00.31.H58" / "hosted" / code / "inbox"
        assert [p for p in inbox.iterdir() if not p.name.startswith(".")], f"nothing delivered to {code}"
    assert "hosting 000.21.31.H58 Phòng Nội vụ huyện Cái Bè" in result.stdout
    assert (workdir / "pki" / "ca.pem").is_file()
    for axis in ("national", "tien-giang", "thua-thien-hue"):
        assert (workdir / axis / "axis.toml").is_file()
    # the provincial axes are bridged to the national one, and a document crossed both bridges
    assert "tien-giang listening at" in result.stdout and "bridged to the national axis" in result.stdout
    hue_inbox = workdir / "000.00.00.H57" / "inbox"
    assert [p for p in hue_inbox.iterdir() if not p.name.startswith(".")], "nothing reached Thừa Thiên Huế"
    # the kept configuration files are valid for the real commands
    tracked = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "track",
            "--config",
            str(workdir / "000.00.00.H58" / "gateway.toml"),
            "000.00.00.G22," + "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tracked.returncode == 2 and "nothing is known" in tracked.stderr
    # and the workspace runs by hand as the README says: the axis where the gateways look for it,
    # a gateway on its real timings (the demo's short ones were an override, not written in)
    axis_toml = (workdir / "tien-giang" / "axis.toml").read_text(encoding="utf-8")
    gateway_toml = (workdir / "000.00.00.H58" / "gateway.toml").read_text(encoding="utf-8")
    assert "port = 0" not in axis_toml and "interval = 0.2" not in gateway_toml
    port = next(line.split("=")[1].strip() for line in axis_toml.splitlines() if line.startswith("port ="))
    assert f"http://127.0.0.1:{port}" in gateway_toml
    axis = Service(
        ["axis", "--config", str(workdir / "tien-giang" / "axis.toml")],
        cwd=workdir / "tien-giang",
        log_path=tmp_path / "axis.log",
    )
    try:
        listening = axis.wait_for(lambda e: e.get("event") == "axis_listening", "the kept axis")
        assert str(listening["port"]) == port
        gateway = Service(
            ["run", "--config", str(workdir / "000.00.00.H58" / "gateway.toml")],
            cwd=workdir / "000.00.00.H58",
            log_path=tmp_path / "gateway.log",
        )
        try:
            started = gateway.wait_for(lambda e: e.get("event") == "gateway_started", "the kept gateway")
            assert started["poll"]["interval"] == 2.0  # the packaged default, not the demo's 0.2
        finally:
            gateway.stop()
    finally:
        axis.stop()


def test_a_demo_that_cannot_finish_says_what_is_missing_and_fails(tmp_path):
    result = demo("--docs", "6", "--workdir", str(tmp_path / "slow"), "--timeout", "0.5")
    assert result.returncode == 1
    assert "NOT DONE" in result.stdout and "lacks" in result.stdout and "workspace kept" in result.stdout


def test_demo_refuses_a_non_empty_workdir_and_too_few_documents(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    result = demo("--workdir", str(tmp_path / "busy"))
    assert result.returncode == 1 and "is not empty" in result.stderr
    result = demo("--docs", "3")
    assert result.returncode == 2 and "at least 6" in result.stderr
