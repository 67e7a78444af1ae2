"""The `edxml-gateway` command as an admin runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from gateway import edxml
from gateway.errors import UntrustedCertificate
from tests.messages import MINISTRY, PROVINCE, full_document, full_status


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def sign_as(pki_dir: Path, code: str, source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    key, cert = pki_dir / f"{code}.key", pki_dir / f"{code}.pem"
    return run("sign", "--key", str(key), "--cert", str(cert), str(source), str(target))


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli-pki")
    assert run("pki", "init", "--dir", str(folder)).returncode == 0
    for code, extra in ((PROVINCE, []), (MINISTRY, ["--ec"])):
        result = run("pki", "issue", "--dir", str(folder), "--agency", code, "--name", "Cơ quan thử", *extra)
        assert result.returncode == 0, result.stderr
    return folder


def test_pki_writes_keys_private_and_certificates_that_name_the_agency(pki_dir):
    for name in ("ca.key", "intermediate.key", f"{PROVINCE}.key", f"{MINISTRY}.key"):
        assert stat.S_IMODE(os.stat(pki_dir / name).st_mode) == 0o600
    # the agency's certificate, then the issuing CA's: the path a signature carries in KeyInfo
    cert, issuing = edxml.TrustStore.from_pem((pki_dir / f"{PROVINCE}.pem").read_bytes()).authorities
    assert edxml.agency_of(cert).text == PROVINCE
    assert issuing.subject == cert.issuer != issuing.issuer
    trust = edxml.TrustStore.from_pem((pki_dir / "ca.pem").read_bytes())
    assert edxml.check_signing_certificate(cert, trust, offered=(issuing,)).text == PROVINCE
    with pytest.raises(UntrustedCertificate):  # the root alone does not reach the agency
        edxml.check_signing_certificate(cert, trust)
    completed = edxml.TrustStore.from_pem(trust_pem := (pki_dir / "ca.pem").read_bytes(), issuing_pem(pki_dir))
    assert edxml.check_signing_certificate(cert, completed).text == PROVINCE
    assert trust_pem.count(b"BEGIN CERTIFICATE") == 1


def issuing_pem(pki_dir: Path) -> bytes:
    return (pki_dir / "intermediate.pem").read_bytes()


def test_pki_revoke_lists_the_certificate_in_the_issuing_cas_crl(tmp_path):
    folder = tmp_path / "pki"
    assert run("pki", "init", "--dir", str(folder), "--crl-url", "http://127.0.0.1:9999/").returncode == 0
    assert run("pki", "issue", "--dir", str(folder), "--agency", PROVINCE).returncode == 0
    cert = x509.load_pem_x509_certificate((folder / f"{PROVINCE}.pem").read_bytes())
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == "http://127.0.0.1:9999/intermediate.crl"
    result = run("pki", "revoke", "--dir", str(folder), "--agency", PROVINCE, "--reason", "keyCompromise")
    assert result.returncode == 0, result.stderr
    crl = x509.load_der_x509_crl((folder / "crl" / "intermediate.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(issuing_pem(folder)).public_key())
    again = run("pki", "crl", "--dir", str(folder), "--days", "1")
    assert again.returncode == 0
    renewed = x509.load_der_x509_crl((folder / "crl" / "intermediate.crl").read_bytes())
    assert renewed.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    number = renewed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("revoke", "--agency", "000.00.99.H58"), "no certificate of 000.00.99.H58"),
        (("revoke", "--agency", PROVINCE, "--reason", "bored"), "unknown revocation reason 'bored'"),
        (("revoke", "--agency", PROVINCE, "--at", "yesterday"), "is not an ISO time"),
        (("revoke", "--agency", PROVINCE, "--at", "2026-12-01T08:00:00"), "names no time zone"),
        (("crl", "--days", "0"), "--days must be between"),
        (("serve", "--listen", "nowhere"), "is not HOST:PORT"),
    ],
)
def test_pki_mistakes_are_named_without_a_traceback(pki_dir, args, message):
    result = run("pki", args[0], "--dir", str(pki_dir), *args[1:])
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_pki_init_never_replaces_a_ca(pki_dir):
    before = (pki_dir / "ca.key").read_bytes()
    result = run("pki", "init", "--dir", str(pki_dir))
    assert result.returncode == 1
    assert "refusing to replace a CA" in result.stderr
    assert (pki_dir / "ca.key").read_bytes() == before


def test_pki_issues_for_an_agency_whose_name_is_longer_than_a_certificate_name_may_be(pki_dir):
    """CN and O hold 64 bytes; a real department's name in UTF-8 is often more."""
    code, name = "000.00.07.H58", "Sở Nông nghiệp và Phát triển nông thôn tỉnh Tiền Giang"
    result = run("pki", "issue", "--dir", str(pki_dir), "--agency", code, "--name", name)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    cert = edxml.TrustStore.from_pem((pki_dir / f"{code}.pem").read_bytes()).authorities[0]
    assert edxml.agency_of(cert).text == code
    shown = cert.subject.rfc4514_string()
    assert "Sở Nông nghiệp và Phát triển nông thôn" in shown


def test_pki_issue_without_a_ca_says_what_to_do(tmp_path):
    result = run("pki", "issue", "--dir", str(tmp_path), "--agency", PROVINCE)
    assert result.returncode == 1
    assert "pki init" in result.stderr and "Traceback" not in result.stderr


def test_sign_then_validate(pki_dir, tmp_path):
    source = tmp_path / "doc.edxml"
    source.write_bytes(edxml.build(full_document()))
    target = tmp_path / "doc.signed.edxml"
    result = sign_as(pki_dir, PROVINCE, source, target)
    assert result.returncode == 0, result.stderr
    result = run("validate", "--strict", "--trust", str(pki_dir / "ca.pem"), "--json", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "valid" and verdict["signer"] == PROVINCE and verdict["kind"] == "document"
    assert verdict["recipients"] == ["000.00.11.H58", "000.01.11.H58"]

    tampered = tmp_path / "tampered.edxml"
    tampered.write_bytes(target.read_bytes().replace("Về việc".encode(), "Về việc khác".encode(), 1))
    result = run("validate", "--trust", str(pki_dir / "ca.pem"), str(target), str(tampered))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{target}: valid document from {PROVINCE}")
    assert lines[1].startswith(f"{tampered}: invalid SIG202 signature does not match content")


def test_status_signed_with_ec_key(pki_dir, tmp_path):
    source = tmp_path / "status.edxml"
    source.write_bytes(edxml.build(full_status(sender=MINISTRY)))
    target = tmp_path / "status.signed.edxml"
    assert sign_as(pki_dir, MINISTRY, source, target).returncode == 0
    result = run("validate", "--trust", str(pki_dir / "ca.pem"), str(target))
    assert result.returncode == 0
    assert "valid status 03 from 000.00.00.G22" in result.stdout


def test_sign_refuses_a_document_of_another_agency(pki_dir, tmp_path):
    source = tmp_path / "doc.edxml"
    source.write_bytes(edxml.build(full_document()))
    target = tmp_path / "out.edxml"
    result = sign_as(pki_dir, MINISTRY, source, target)
    assert result.returncode == 1
    assert "SIG208" in result.stderr and "refusing to sign" in result.stderr
    assert not target.exists()


def test_sign_refuses_what_is_not_edxml_and_writes_nothing(pki_dir, tmp_path):
    source = tmp_path / "junk.edxml"
    source.write_bytes(b"<not-edxml/>")
    target = tmp_path / "out.edxml"
    result = sign_as(pki_dir, PROVINCE, source, target)
    assert result.returncode == 1 and "EDX105" in result.stderr
    assert list(tmp_path.iterdir()) == [source]


def test_unsigned_file_fails_unless_allowed(tmp_path):
    source = tmp_path / "doc.edxml"
    source.write_bytes(edxml.build(full_document()))
    refused = run("validate", str(source))
    assert refused.returncode == 1 and f"{source}: unsigned document" in refused.stdout
    allowed = run("validate", "--allow-unsigned", str(source))
    assert allowed.returncode == 0 and "unsigned, accepted by --allow-unsigned" in allowed.stdout


def test_signed_file_without_trust_store_is_invalid(pki_dir, tmp_path):
    signed = tmp_path / "signed.edxml"
    signed.write_bytes(
        edxml.sign_message(
            full_document(),
            edxml.SigningIdentity.from_pem(
                (pki_dir / f"{PROVINCE}.key").read_bytes(), (pki_dir / f"{PROVINCE}.pem").read_bytes()
            ),
        )
    )
    result = run("validate", str(signed))
    assert result.returncode == 1 and "no trust store" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
        (["validate", "--trust", "/nonexistent/ca.pem", "x.edxml"], "trust store /nonexistent/ca.pem does not exist"),
        (
            ["sign", "--key", "/nonexistent.key", "--cert", "c.pem", "a", "b"],
            "private key /nonexistent.key does not exist",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_message(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_and_unreadable_input_files_are_invalid_not_crashes(tmp_path):
    folder = tmp_path / "a-folder.edxml"
    folder.mkdir()
    result = run("validate", "--allow-unsigned", str(tmp_path / "missing.edxml"), str(folder))
    assert result.returncode == 1
    assert "does not exist" in result.stdout and "is a directory" in result.stdout
    assert "Traceback" not in result.stderr


def test_bad_trust_store_is_named(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    result = run("validate", "--trust", str(bad), str(bad))
    assert result.returncode == 1
    assert "PKI300" in result.stderr and "trust store" in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("edxml-gateway")
    assert script.exists()
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "validate" in result.stdout and "pki" in result.stdout
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("edxml-gateway ")


@pytest.mark.parametrize("limit", ["-1", "0", "many"])
def test_list_limit_must_be_a_count(tmp_path, limit):
    """Found in review: --limit -1 listed everything (SQLite's LIMIT -1), though "at most"."""
    result = run("list", "--config", str(tmp_path / "gateway.toml"), "--limit", limit)
    assert result.returncode == 2 and "--limit" in result.stderr and "Traceback" not in result.stderr
