"""Hostile documents sent through a real axis to a real gateway, and the same bytes fed to
`edxml-gateway validate`: hostile names are delivered under safe names, never outside the
inbox; broken documents are refused at the axis door (ErrorCode 22) and by validate, with
the same error code."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import edxml
from gateway.errors import AxisError
from tests.e2e.province import send_directly, signed_by, to, wait_until
from tests.messages import full_document

MINISTRY, DEPARTMENT = "000.00.00.G22", "000.00.11.H58"

HOSTILE_NAMES = [
    "../../../../../escaped-relative.txt",
    "/tmp/escaped-absolute.txt",
    "..\\..\\..\\escaped-windows.txt",
    "tab\there\u202eright-to-left.pdf",
    "CON",
    "NUL.txt",
    "x" * 10_000 + ".pdf",
    ".hidden",
    "..",
]


def validate(tmp_path: Path, name: str, data: bytes, pki_folder: Path) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-P", "-m", "gateway", "validate", "--trust", str(pki_folder / "ca.pem"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hostile_attachment_names_are_delivered_under_safe_names_inside_the_inbox(province, tmp_path):
    department = province.start(DEPARTMENT)
    base = to(full_document(sender=MINISTRY), DEPARTMENT, document_id=f"{MINISTRY},2026/11/25,66/VPCP")
    attachments = tuple(
        edxml.Attachment(f"h-{i}", attachment_name=name, data=f"payload {i}".encode(), content_type="text/plain")
        for i, name in enumerate(HOSTILE_NAMES)
    )
    signed = signed_by(province, MINISTRY, dataclasses.replace(base, attachments=attachments))
    assert validate(tmp_path, "names.edxml", signed, province.root / "pki").returncode == 0
    send_directly(province, MINISTRY, signed)
    (delivered,) = wait_until(lambda: department.delivered(), "the document with hostile names")
    folder = department.inbox / delivered["id"] / "attachments"
    written = sorted(p.name for p in folder.iterdir())
    assert len(written) == len(HOSTILE_NAMES), written
    for name in written:
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name.upper().split(".")[0] not in {"CON", "NUL"} and len(name.encode()) <= 255
        assert all(ch.isprintable() for ch in name)
    assert sorted(p.read_bytes() for p in folder.iterdir()) == sorted(a.data for a in attachments)
    assert not list(province.root.rglob("escaped-*")) or all(
        folder in p.parents for p in province.root.rglob("escaped-*")
    )
    assert not Path("/tmp/escaped-absolute.txt").exists()


def _replace(pattern: str, replacement: str, count: int = 1):
    return lambda text: re.sub(pattern, replacement, text, count=count)


def _no_declaration(text: str) -> str:
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", text)


BROKEN = {
    "invalid-base64": ("EDX107", _replace(r"(<edXML:ContentTransferEncoded[^>]*>)[^<]{8}", r"\1!!not64!")),
    "duplicate-content-ids": ("EDX107", lambda text: text.replace("cid:att-1", "cid:att-0")),
    "manifest-disagrees": ("EDX107", lambda text: text.replace("<ContentId>cid:att-1<", "<ContentId>cid:att-9<")),
    "internal-entity": ("EDX102", lambda text: '<!DOCTYPE x [<!ENTITY e "boom">]>' + _no_declaration(text)),
    "external-entity": (
        "EDX102",
        lambda text: '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + _no_declaration(text),
    ),
    "tampered-attachment": ("SIG202", _replace(r"(<edXML:ContentTransferEncoded[^>]*>)AAEC", r"\1AAED")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_documents_are_refused_at_the_axis_and_by_validate_with_the_same_code(province, tmp_path, case):
    code, mutate = BROKEN[case]
    signed = signed_by(
        province,
        MINISTRY,
        to(full_document(sender=MINISTRY), DEPARTMENT, document_id=f"{MINISTRY},2026/11/25,{case}/VPCP"),
    )
    broken = mutate(signed.decode("utf-8")).encode("utf-8")
    assert broken != signed, "the mutation did not apply"
    checked = validate(tmp_path, f"{case}.edxml", broken, province.root / "pki")
    assert checked.returncode == 1 and code in checked.stdout + checked.stderr, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr
    with pytest.raises(AxisError) as refused:
        send_directly(province, MINISTRY, broken)
    assert refused.value.axis_code in {"10", "22"} and code in str(refused.value), str(refused.value)
