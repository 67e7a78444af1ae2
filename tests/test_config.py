"""The TOML configuration: every key documented, wrong keys named, paths relative to the file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from gateway import config
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, Limits
from tests.conftest import REPO
from tests.messages import PROVINCE, full_document


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_documents_every_key_with_its_default():
    example = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    assert example["limits"] == {f.name: getattr(DEFAULT_LIMITS, f.name) for f in fields(Limits)}
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    for section, shape in config.SECTIONS.items():
        for f in fields(shape):
            if (
                f.name in example.get(section, {})
                and f.default not in (MISSING, None)
                and not isinstance(f.default, Path)
            ):
                assert example[section][f.name] == f.default, f"{section}.{f.name} documents another default"
    for section, shape in config.SECTIONS.items():
        assert f"[{section}]" in text, f"[{section}] is not documented"
        for f in fields(shape):
            assert f"{f.name} = " in text, f"{section}.{f.name} is not documented"


def test_relative_paths_resolve_against_the_file(tmp_path):
    loaded = config.load(write(tmp_path, '[signing]\ntrust = "pki/ca.pem"\n[limits]\nmax_depth = 20\n'))
    assert loaded.signing.trust == tmp_path.resolve() / "pki" / "ca.pem"
    assert loaded.limits.max_depth == 20


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[signing]\ntrsut = 'x'\n", "signing.trsut", "unknown key 'trsut'"),
        ("[poll]\ninterval = 'fast'\n", "poll.interval", "must be float"),
        ("[agency]\nname = 'UBND'\n", "agency.code", "key 'code' is missing"),
        ("[limit]\n", "[limit]", "unknown section"),
        ("[limits]\nmax_depth = 'ten'\n", "max_depth", "must be int"),
        ("[limits]\nmax_depth = true\n", "max_depth", "must be int"),
        ("[limits]\nmax_depth = 0\n", "[limits]", "must be positive"),
        ("[signing]\nallow_sha1 = 1\n", "allow_sha1", "must be bool"),
        ("[signing\n", "gateway.toml", "not valid TOML"),
        ("signing = 3\n", "signing", "must be a table"),
    ],
)
def test_wrong_configuration_is_refused_naming_the_key(tmp_path, text, where, message):
    with pytest.raises(config.ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert where in caught.value.where and message in caught.value.message
    assert caught.value.code == "CFG500"


def test_missing_file(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_commands_read_the_configuration(pki, tmp_path):
    (tmp_path / "pki").mkdir()
    for name in ("ca.pem", f"{PROVINCE}.pem", f"{PROVINCE}.key"):
        (tmp_path / "pki" / name).write_bytes((pki.folder / name).read_bytes())
    path = write(
        tmp_path,
        f'[signing]\nkey = "pki/{PROVINCE}.key"\ncert = "pki/{PROVINCE}.pem"\ntrust = "pki/ca.pem"\n',
    )
    from gateway import edxml

    (tmp_path / "doc.edxml").write_bytes(edxml.build(full_document()))
    run = [sys.executable, "-m", "gateway"]
    signed = subprocess.run(
        [*run, "sign", "--config", str(path), str(tmp_path / "doc.edxml"), str(tmp_path / "signed.edxml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert signed.returncode == 0, signed.stderr
    checked = subprocess.run(
        [*run, "validate", "--config", str(path), str(tmp_path / "signed.edxml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "signed by 000.00.00.H58" in checked.stdout
    bad = subprocess.run(
        [*run, "validate", "--config", str(write(tmp_path, "[limits]\nmax_bytes = -1\n")), str(tmp_path / "doc.edxml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "CFG500" in bad.stderr and "Traceback" not in bad.stderr


def test_the_readme_configuration_reference_matches_the_code():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for section, shape in config.SECTIONS.items():
        for f in fields(shape):
            row = next((line for line in readme.splitlines() if f"`{section}.{f.name}`" in line), None)
            assert row is not None, f"README does not document {section}.{f.name}"
            if f.default not in (MISSING, None) and not isinstance(f.default, Path):
                shown = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
                assert f"`{shown}`" in row, f"README gives another default for {section}.{f.name}: {row}"
            if isinstance(f.default, Path):
                assert f"`{f.default}`" in row


def test_the_readme_lists_every_error_code():
    from gateway import errors

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    codes = {
        cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.GatewayError)
    }
    codes |= {config.ConfigError.code}
    for code in sorted(codes):
        assert f"| {code} |" in readme, f"README lacks error code {code}"


def test_overrides_replace_keys_section_by_section_and_are_checked_alike(tmp_path):
    path = write(tmp_path, "[poll]\ninterval = 60.0\nlong_poll = false\n[workers]\npush = 5.0\n")
    overrides = tmp_path / "quick.toml"
    overrides.write_text("[poll]\ninterval = 0.2\n[intake]\nsettle_seconds = 0.3\n", encoding="utf-8")
    merged = config.load(path, overrides=overrides)
    assert merged.poll.interval == 0.2 and merged.poll.long_poll is False  # the rest of [poll] stays
    assert merged.workers.push == 5.0 and merged.intake.settle_seconds == 0.3
    assert config.load(path).poll.interval == 60.0  # the file itself is as written
    overrides.write_text("[pol]\ninterval = 0.2\n", encoding="utf-8")
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, overrides=overrides)
    assert "unknown section [pol]" in str(caught.value) and "quick.toml" in str(caught.value)


def test_hosted_agencies_take_defaults_from_their_code_and_an_override_gives_the_whole_list(tmp_path):
    path = write(
        tmp_path,
        '[signing]\nkey = "pki/own.key"\ncert = "pki/own.pem"\n'
        '[[hosted]]\ncode = "000.01.31.H58"\nname = "UBND xã Hậu Thành"\n'
        '[[hosted]]\ncode = "000.02.31.H58"\nname = "UBND xã An Hữu"\ninbox = "/srv/an-huu/inbox"\n',
    )
    loaded = config.load(path)
    first, second = loaded.hosted
    base = tmp_path.resolve()
    assert first.key == base / "pki" / "000.01.31.H58.key" and first.cert == base / "pki" / "000.01.31.H58.pem"
    assert first.outbox == base / "hosted" / "000.01.31.H58" / "outbox"
    assert first.inbox == base / "hosted" / "000.01.31.H58" / "inbox" and first.parent is None
    assert second.inbox == Path("/srv/an-huu/inbox")
    overrides = tmp_path / "one.toml"
    overrides.write_text('[[hosted]]\ncode = "000.03.31.H58"\nname = "UBND xã Mỹ Lợi"\n', encoding="utf-8")
    assert [h.code for h in config.load(path, overrides=overrides).hosted] == ["000.03.31.H58"]
    for text, where in (
        ('[hosted]\ncode = "000.01.31.H58"\n', "hosted"),
        ('[[hosted]]\ncode = "000.01.31.H58"\n', "hosted[0].name"),
        ('[[hosted]]\ncode = "000.01.31.H58"\nname = "x"\nmail = "y"\n', "hosted[0].mail"),
    ):
        with pytest.raises(config.ConfigError) as caught:
            config.load(write(tmp_path, text))
        assert where in str(caught.value), (text, str(caught.value))
