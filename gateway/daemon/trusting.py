"""What [signing] says, read: whom the gateway trusts (the trust anchors, the configured
intermediates, the revocation policy with its CRL cache in data_dir/crls) and, for a key on a
token ([signing.pkcs11]), the identity it signs with."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.edxml.certs import load_certificates
from gateway.edxml.revocation import RevocationPolicy
from gateway.errors import FolderError, KeyMaterialError, TokenUnavailable
from gateway.revocation import CrlCache, Revocation


def read_file(path: Path, key: str) -> bytes:
    """A key, certificate or trust file named by configuration ``key``, or an error naming both."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FolderError(f"{path} cannot be read by {getpass.getuser()}: {exc.strerror}", where=key) from None


def load_trust(config: Config) -> edxml.TrustStore:
    signing = config.signing
    assert signing.trust
    where = f"{config.path}: signing.trust"
    anchors = read_file(signing.trust, where)
    more = None
    if signing.intermediates is not None:
        more = read_file(signing.intermediates, f"{config.path}: signing.intermediates")
    try:
        return edxml.TrustStore.from_pem(anchors, more)
    except KeyMaterialError as exc:
        named = f"{signing.trust}" + (f", {signing.intermediates}" if more else "")
        raise KeyMaterialError(f"{exc.message} ({named})", where=where) from None


def revocation(config: Config, log: Any) -> Revocation:
    policy = config.signing.revocation
    if policy is RevocationPolicy.OFF:
        return Revocation(policy, None)
    return Revocation(policy, CrlCache(config.paths.data_dir / "crls", log=log))


def token_identity(config: Config, code: str, cert: Path, key: str, *, looking: bool = False) -> edxml.SigningIdentity:
    """The identity of an agency whose key is on the token of [signing.pkcs11]: the installation's
    own under ``key_label``, a hosted agency's under its code. ``looking`` (health, track, list):
    the certificate only; the token and its PIN are left alone."""
    from gateway.token_keys import (  # a token's installation only
        TokenSession,
        TokenSettings,
        token_key,
        unavailable_key,
    )

    pkcs11 = config.signing.pkcs11
    assert pkcs11 is not None and config.agency is not None
    if looking:
        leaf, *rest = load_certificates(read_file(cert, f"{config.path}: {key}.cert"), what=f"{key}.cert {cert}")
        stand_in = unavailable_key(leaf.public_key(), f"{config.path}: signing.pkcs11")
        return edxml.SigningIdentity(key=stand_in, certificate=leaf, intermediates=tuple(rest))
    pin = read_file(pkcs11.pin_file, f"{config.path}: signing.pkcs11.pin_file").decode("utf-8", "replace").strip()
    label = pkcs11.key_label if code == edxml.AgencyCode.lenient(config.agency.code).text else code
    cert_pem = read_file(cert, f"{config.path}: {key}.cert")
    session = TokenSession(TokenSettings(pkcs11.module, pkcs11.token_label, label, pin))
    try:
        leaf = load_certificates(cert_pem, what=f"{key}.cert {cert}")[0]
        return edxml.SigningIdentity.from_key(token_key(session, leaf.public_key()), cert_pem)
    except TokenUnavailable:
        raise
    except KeyMaterialError as exc:
        where = str(config.path)
        raise KeyMaterialError(f"{exc.message} (token key {label!r}, {key}.cert {cert})", where=where) from None
