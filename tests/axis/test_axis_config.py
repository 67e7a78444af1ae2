"""The axis's configuration file: errors that name the key, the example's documented defaults,
sections and keys it does not know."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys

import pytest

from gateway.axis.config import AxisConfig, UpstreamConfig, load
from gateway.config import ConfigError
from tests.conftest import REPO


def test_configuration_errors_name_the_key(tmp_path):
    path = tmp_path / "axis.toml"
    path.write_text('[server]\nhost = "127.0.0.1"\nport = 8780\ncode = "000.00.00.G22"\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "axis", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 78  # EX_CONFIG: the unit does not restart it
    assert "server.data_dir" in result.stderr and "Traceback" not in result.stderr


def test_the_example_configuration_loads_with_the_documented_defaults(tmp_path):
    shutil.copy(REPO / "examples" / "axis.toml", tmp_path / "axis.toml")
    (tmp_path / "secrets").mkdir()
    for system in ("sys-h58", "sys-g22"):
        (tmp_path / "secrets" / f"{system}.secret").write_text("a-secret-of-twenty-chars\n")
    config = load(tmp_path / "axis.toml")
    defaults = {f.name: f.default for f in dataclasses.fields(AxisConfig) if f.default is not dataclasses.MISSING}
    for name, default in defaults.items():
        assert getattr(config, name) == default, name
    assert config.port == 8780 and config.data_dir == tmp_path.resolve() / "axis-data"
    assert [s.id for s in config.systems] == ["sys-h58", "sys-g22"]
    assert "a-secret" not in repr(config.systems)
    assert config.upstream is None
    # the commented [upstream] of a provincial axis, taken in as written: its defaults are the code's
    text = (tmp_path / "axis.toml").read_text(encoding="utf-8")
    head, commented = text.split("# [upstream]\n")
    lines = [line.removeprefix("# ").split("   #")[0] for line in commented.splitlines()]
    (tmp_path / "axis.toml").write_text(head + "[upstream]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "secrets" / "upstream.secret").write_text("a-secret-of-twenty-chars\n")
    upstream = load(tmp_path / "axis.toml").upstream
    assert upstream is not None and upstream.system_id == "sys-tiengiang-axis"
    for field in dataclasses.fields(UpstreamConfig):
        if field.default is not dataclasses.MISSING:
            assert getattr(upstream, field.name) == field.default, field.name
    assert "a-secret" not in repr(upstream)


AXIS_BASE = '[server]\nhost = "127.0.0.1"\nport = 0\ndata_dir = "d"\ncode = "000.00.00.G22"\n'


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (AXIS_BASE + '[upstreams]\nurl = "https://vxp.example"\n', "unknown section [upstreams]"),
        (AXIS_BASE + '[upstream]\nurl = "https://vxp.example"\n', "upstream.system_id"),
        (AXIS_BASE + '[upstream]\nurl = "vxp.example"\nsystem_id = "s"\nsecret = "x"\n', "upstream.url"),
        (
            AXIS_BASE + '[upstream]\nurl = "https://vxp.example"\nsystem_id = "s"\nsecret = "0123456789abcdef"\n'
            "poll_interval = 0\n",
            "upstream.poll_interval",
        ),
        (AXIS_BASE + '[upstream]\nurl = "https://x"\nsystem_id = "s"\nsecret = "short"\n', "upstream.secret"),
        (AXIS_BASE + '[upstream]\nurl = "https://x"\nsystem_id = "s"\nsecrett = "s"\n', "upstream.secrett"),
        (AXIS_BASE.replace("port = 0", "prot = 0"), "unknown key 'prot'; [server] takes host"),
        (AXIS_BASE + '[[agencies]]\ncode = "000.00.00.H58"\nname = "x"\nlock = true\n', "[agencies[0]] takes code"),
        (
            AXIS_BASE + '[[systems]]\nid = "upstream"\nsecret = "0123456789abcdef"\nagencies = []\n',
            "axis.toml: systems[0].id",
        ),
    ],
)
def test_a_section_or_key_the_axis_does_not_know_is_refused(tmp_path, text, named):
    (tmp_path / "axis.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "axis.toml")
    assert named in str(caught.value) and "axis.toml" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('max_body_bytes = "big"', "axis.toml: server.max_body_bytes"),
        ("max_body_bytes = 0", "axis.toml: server.max_body_bytes"),
        ("timestamp_window_seconds = 0", "axis.toml: server.timestamp_window_seconds"),
        ("fail_retry_seconds = -5", "axis.toml: server.fail_retry_seconds"),
        ("long_poll = 1", "axis.toml: server.long_poll"),
    ],
)
def test_a_wrong_server_value_is_refused_naming_its_section_and_key(tmp_path, line, named):
    """Found in review: an optional [server] key's error named "axis.toml.max_body_bytes", and
    a 0 written was silently replaced by the default, past the check that refuses it."""
    (tmp_path / "axis.toml").write_text(AXIS_BASE.replace("port = 0\n", f"port = 0\n{line}\n"))
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "axis.toml")
    assert named in str(caught.value), str(caught.value)


def test_an_address_already_taken_is_said_as_such_not_as_a_folder_problem(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "axis.toml").write_text(AXIS_BASE.replace("port = 0", f"port = {port}"))
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "axis", "--config", str(tmp_path / "axis.toml")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1  # not 78: what holds the address now may be gone at the next start
    said = json.loads(result.stderr.strip().splitlines()[-1])  # the axis's one JSON line
    assert said["event"] == "not_started" and said["code"] == "RUN952", said
    assert f"'127.0.0.1', {port}" in said["error"] and "server.port" in said["error"]
    assert "owner and mode" not in said["error"] and "Traceback" not in result.stderr
