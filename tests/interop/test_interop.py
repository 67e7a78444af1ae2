"""Every public sample in ../shared/interop is judged as MANIFEST.tsv says.

The files carry no licence: they are read from the shared folder, never copied here,
and the tests skip when the folder is absent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys

import pytest

from gateway import edxml
from gateway.errors import FormatError
from tests.conftest import INTEROP

pytestmark = pytest.mark.skipif(not (INTEROP / "MANIFEST.tsv").is_file(), reason="../shared/interop is absent")


def manifest() -> list[dict[str, str]]:
    if not (INTEROP / "MANIFEST.tsv").is_file():
        return []
    with (INTEROP / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


ROWS = manifest()
ACCEPT = [row for row in ROWS if row["expected"] == "accept"]
REJECT = [row for row in ROWS if row["expected"] == "reject"]


def test_the_set_is_complete_and_intact():
    assert len(ROWS) == 44
    for row in ROWS:
        data = (INTEROP / row["file"]).read_bytes()
        assert len(data) == int(row["bytes"]) and hashlib.sha256(data).hexdigest() == row["sha256"], row["file"]


@pytest.mark.parametrize("row", ACCEPT, ids=[row["file"] for row in ACCEPT])
def test_accepted_files_parse_validate_and_rebuild(row):
    data = (INTEROP / row["file"]).read_bytes()
    checked = edxml.validate(data, trust=None, require_signature=False)
    assert checked.kind.value == ("status" if row["kind"] == "status" else "document")
    # every public sample is unsigned or placeholder-signed: reported as unsigned, never as invalid
    assert checked.signature.state is edxml.SignatureState.UNSIGNED
    assert edxml.read(edxml.build(checked.message)) == checked.message


@pytest.mark.parametrize("row", REJECT, ids=[row["file"] for row in REJECT])
def test_rejected_files_are_refused_with_a_located_reason(row):
    data = (INTEROP / row["file"]).read_bytes()
    with pytest.raises(FormatError) as caught:
        edxml.validate(data, trust=None, require_signature=False)
    assert caught.value.code == "EDX101"
    assert caught.value.where.startswith("line ")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120)


def test_validate_command_accepts_every_accept_file_with_allow_unsigned():
    result = run_cli("validate", "--allow-unsigned", "--json", *(str(INTEROP / row["file"]) for row in ACCEPT))
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(verdicts) == len(ACCEPT)
    assert {v["verdict"] for v in verdicts} == {"valid"}
    assert all(v["signature"] == "unsigned" for v in verdicts)


def test_validate_command_without_allow_unsigned_fails_them_as_unsigned():
    row = ACCEPT[0]
    result = run_cli("validate", str(INTEROP / row["file"]))
    assert result.returncode == 1
    assert ": unsigned " in result.stdout


@pytest.mark.parametrize("row", REJECT, ids=[row["file"] for row in REJECT])
def test_validate_command_refuses_each_reject_file(row):
    result = run_cli("validate", "--allow-unsigned", str(INTEROP / row["file"]))
    assert result.returncode == 1
    assert "invalid EDX101 malformed XML" in result.stdout and "(at line " in result.stdout
    assert "Traceback" not in result.stderr
