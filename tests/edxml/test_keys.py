"""Private keys as the gateway loads them: quickly (an installation hosting 300 agencies loads
300 at start), and never one whose signatures would fail at every recipient."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import edxml
from gateway.errors import KeyMaterialError
from gateway.pki import create_ca, issue
from tests.messages import PROVINCE, full_document


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_sound_key_loads_and_signs():
    pair = issue(create_ca("test CA"), PROVINCE, "UBND tỉnh Tiền Giang")
    identity = edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem)
    assert edxml.sign_message(full_document(), identity).startswith(b"<?xml")


def test_a_key_whose_parts_do_not_fit_is_refused_at_load():
    """The key check OpenSSL would do at load is skipped for speed; the self-test stands in for it."""
    pair = issue(create_ca("test CA"), PROVINCE, "UBND tỉnh Tiền Giang")
    sound = serialization.load_pem_private_key(pair.key_pem, password=None)
    assert isinstance(sound, rsa.RSAPrivateKey)
    numbers = sound.private_numbers()
    broken = rsa.RSAPrivateNumbers(
        p=numbers.p,
        q=numbers.q,
        d=numbers.d + 2,  # a corrupted private exponent, and the CRT parts derived from it
        dmp1=(numbers.d + 2) % (numbers.p - 1),
        dmq1=(numbers.d + 2) % (numbers.q - 1),
        iqmp=numbers.iqmp,
        public_numbers=numbers.public_numbers,
    ).private_key(unsafe_skip_rsa_key_validation=True)
    with pytest.raises(KeyMaterialError, match="does not make signatures its certificate verifies"):
        edxml.SigningIdentity.from_pem(pem(broken), pair.cert_pem)
