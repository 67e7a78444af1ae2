"""Whom the gateway trusts, read from [signing]: the trust anchors, the configured
intermediates, and the revocation policy with its CRL cache (data_dir/crls)."""

from __future__ import annotations

from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.daemon.outgoing import read_file
from gateway.edxml.revocation import RevocationPolicy
from gateway.errors import KeyMaterialError
from gateway.revocation import CrlCache, Revocation


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
