"""Keys on a PKCS#11 token (issue 19), with SoftHSM2: signatures made on the token verify like
any other, the key cannot be had from it, and a token that is absent, refuses the PIN or holds
no such key stops the gateway at start with a clear error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway import edxml, pki_folder, workspace
from gateway.errors import KeyMaterialError, TokenUnavailable
from tests.messages import DEPARTMENT, PROVINCE, full_document, full_status
from tests.softhsm import SoftToken, make_token

OFFICE = "000.00.01.H58"  # Văn phòng UBND tỉnh, hosted by the province's installation


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("token-pki")
    pki_folder.init_dir(folder)
    pki_folder.issue_to_dir(folder, PROVINCE, "UBND tỉnh Tiền Giang")
    pki_folder.issue_to_dir(folder, DEPARTMENT, "Sở Nội vụ", use_ec=True)
    return folder


@pytest.fixture(scope="module")
def token(tmp_path_factory, pki) -> SoftToken:
    """One token for this process: a PKCS#11 module reads its configuration once per process."""
    made = make_token(
        tmp_path_factory.mktemp("softhsm"),
        "agencies",
        {"rsa": pki / f"{PROVINCE}.key", "ec": pki / f"{DEPARTMENT}.key"},
        spare="spare",
    )
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    return made


def identity_on(token: SoftToken, pki: Path, code: str, label: str) -> edxml.SigningIdentity:
    from gateway.token_keys import TokenSession, TokenSettings, token_key

    cert_pem = (pki / f"{code}.pem").read_bytes()
    session = TokenSession(TokenSettings(token.module, token.label, label, token.pin_file.read_text().strip()))
    public = x509.load_pem_x509_certificates(cert_pem)[0].public_key()
    return edxml.SigningIdentity.from_key(token_key(session, public), cert_pem)


@pytest.mark.parametrize(("code", "label"), [(PROVINCE, "rsa"), (DEPARTMENT, "ec")])
def test_signatures_made_on_the_token_verify_along_the_whole_path(token, pki, code, label):
    identity = identity_on(token, pki, code, label)
    # a token may take far longer than a key in memory: the daemon never asks it from its event loop
    assert not identity.in_memory
    in_memory = edxml.SigningIdentity.from_pem((pki / f"{code}.key").read_bytes(), (pki / f"{code}.pem").read_bytes())
    assert in_memory.in_memory
    message = full_document() if code == PROVINCE else full_status(sender=code)
    data = edxml.sign_message(message, identity)
    verdict = edxml.validate(data, trust=edxml.TrustStore.from_pem((pki / "ca.pem").read_bytes())).signature
    assert verdict.valid and verdict.signer == code and len(verdict.chain) == 3
    with pytest.raises(TypeError, match="stays on its token"):
        identity.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def test_a_signature_asked_from_an_event_loop_is_said_once_as_an_error(token, pki):
    """The daemon hands every token signature to a worker thread: one asked on the loop's own
    thread is a defect, logged so that the e2e token test and the replay see it."""
    identity = identity_on(token, pki, PROVINCE, "rsa")
    message = full_document()

    async def on_the_loop_then_in_a_thread() -> None:
        await asyncio.to_thread(edxml.sign_message, message, identity)
        assert not captured  # a worker thread: as the daemon asks
        edxml.sign_message(message, identity)
        edxml.sign_message(message, identity)

    with structlog.testing.capture_logs() as captured:
        asyncio.run(on_the_loop_then_in_a_thread())
    assert [(e["event"], e["log_level"], e["key"]) for e in captured] == [
        ("token_signed_on_event_loop", "error", "rsa")
    ]


def test_a_token_key_that_is_not_the_certificates_is_refused(token, pki):
    with pytest.raises(KeyMaterialError, match="does not make signatures its certificate verifies"):
        # the RSA key on the token, under a certificate of another RSA key
        other = pki_folder.issue_to_dir(pki, "000.00.00.G22")[0]
        from gateway.token_keys import TokenSession, TokenSettings, token_key

        session = TokenSession(TokenSettings(token.module, token.label, "rsa", token.pin_file.read_text().strip()))
        cert_pem = other.read_bytes()
        public = x509.load_pem_x509_certificates(cert_pem)[0].public_key()
        edxml.SigningIdentity.from_key(token_key(session, public), cert_pem)


def test_a_refused_pin_is_not_tried_again_so_the_token_does_not_lock(token):
    """Each wrong PIN counts towards locking a token: the second key asked of it fails at once."""
    from gateway.token_keys import TokenSession, TokenSettings

    with pytest.raises(TokenUnavailable, match="refused the PIN") as first:
        TokenSession(TokenSettings(token.module, "spare", "any", "000000"))
    with pytest.raises(TokenUnavailable) as second:
        TokenSession(TokenSettings(token.module, "spare", "other", "000000"))
    # remembered, not a second C_Login: the same refusal, said again without asking the token
    assert second.value.message == first.value.message and "not tried again" in second.value.message
    from gateway.token_keys import _TOKENS

    assert _TOKENS[(str(token.module), "spare")].refused is not None
    with pytest.raises(TokenUnavailable, match="already used with another PIN"):
        TokenSession(TokenSettings(token.module, "spare", "any", token.pin_file.read_text().strip()))


@pytest.fixture
def installation(tmp_path) -> tuple[Path, SoftToken]:
    """A gateway configuration whose key is on a token of its own (no axis: keys are read first)."""
    layout = workspace.create(
        tmp_path / "province", {PROVINCE: "UBND tỉnh Tiền Giang"}, hosted={PROVINCE: {OFFICE: "Văn phòng UBND tỉnh"}}
    )
    workspace.configure_gateways(layout, "http://127.0.0.1:9")
    keys = {
        "signing": tmp_path / "province" / "pki" / f"{PROVINCE}.key",
        OFFICE: tmp_path / "province" / "pki" / f"{OFFICE}.key",
    }
    token = make_token(tmp_path / "hsm", "agency", keys)
    for key in keys.values():
        key.unlink()  # imported: on the token now, and only there
    config = layout.agencies[PROVINCE].config
    text = config.read_text(encoding="utf-8").replace(f'key = "../pki/{PROVINCE}.key"\n', "")
    config.write_text(text + token.toml("signing"), encoding="utf-8")
    return config, token


def test_the_gateway_starts_with_its_key_on_the_token(installation):
    from gateway.processes import Service

    config, token = installation
    service = Service(
        ["run", "--config", str(config)], cwd=config.parent, log_path=config.parent / "g.log", env=token.env
    )
    try:
        started = service.wait_for(lambda e: e.get("event") == "gateway_started", "the gateway to start")
        assert started["hosted"] == [OFFICE]  # its key on the same token, labelled with its code
    finally:
        service.stop()
    # health looks without the token: it must not need it, nor its PIN
    token.tokens.rename(token.tokens.with_name("pulled-out"))
    looked = subprocess.run(
        [sys.executable, "-m", "gateway", "health", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **token.env},
    )
    assert "PKI301" not in looked.stdout + looked.stderr and "Traceback" not in looked.stderr
    assert json.loads(looked.stdout)["status"] in ("OK", "WARNING", "CRITICAL")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("pin", "000000"), "refused the PIN"),
        (("token_label", "gone"), "no token labelled 'gone'"),
        (("key_label", "nobody"), "holds no private key labelled 'nobody'"),
        (("module", "/usr/lib/no-such-pkcs11.so"), "signing.pkcs11.module"),
        (("key", "../pki/ca.key"), "give exactly one of key"),
    ],
)
def test_a_token_that_cannot_sign_stops_the_start_with_the_reason(installation, change, expected):
    config, token = installation
    what, value = change
    text = config.read_text(encoding="utf-8")
    if what == "pin":
        token.pin_file.write_text(value + "\n")
    elif what == "key":
        text = text.replace('cert = "', f'key = "{value}"\ncert = "', 1)
    else:
        start = text.index(f"{what} = ")
        text = text[:start] + f'{what} = "{value}"' + text[text.index("\n", start) :]
    config.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **token.env},
        cwd=config.parent,
    )
    assert done.returncode != 0
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert token.pin_file.read_text().strip() not in done.stderr + done.stdout  # the PIN is never said
