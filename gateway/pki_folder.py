"""The folder `edxml-gateway pki` keeps a development PKI in, three levels as real ones are:

    ca.pem, ca.key                      the root (the trust anchor: [signing] trust = ca.pem)
    intermediate.pem, intermediate.key  the issuing CA under it, which certifies agencies
    CODE.pem, CODE.key                  an agency's certificate, followed by the intermediate's
                                        (so its signatures carry the whole path in KeyInfo)
    pki.json                            where the CRLs are published, the last CRL number
    revoked.json                        what `pki revoke` revoked, when and why
    crl/root.crl, crl/intermediate.crl  the CRLs `pki crl` issues and `pki serve` publishes

A folder made before the intermediate existed (ca.* only) keeps working: its CA issues directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.edxml import AgencyCode
from gateway.errors import KeyMaterialError
from gateway.fsutil import write_atomic
from gateway.pki import KeyPair, Revoked, create_ca, issue, make_crl

CA_CERT, CA_KEY = "ca.pem", "ca.key"
INTERMEDIATE_CERT, INTERMEDIATE_KEY = "intermediate.pem", "intermediate.key"
SETTINGS, REVOKED = "pki.json", "revoked.json"
CRL_FOLDER = "crl"
CRL_DAYS = 7.0


@dataclass(frozen=True)
class Settings:
    crl_url: str | None  # the base address the CRLs are served under (`pki serve`), or none
    crl_number: int = 0


def init_dir(folder: Path, *, use_ec: bool = False, crl_url: str | None = None) -> tuple[Path, Path]:
    """Create the root and the intermediate (and their first CRLs); never replaces a CA."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (CA_CERT, CA_KEY, INTERMEDIATE_CERT, INTERMEDIATE_KEY):
        if (folder / name).exists():
            where = str(folder / name)
            raise KeyMaterialError(f"{where} already exists: refusing to replace a CA", where=where)
    base = crl_url.rstrip("/") if crl_url else None
    root = create_ca("edxml-gateway development root CA", use_ec=use_ec)
    intermediate = create_ca(
        "edxml-gateway development issuing CA",
        issuer=root,
        use_ec=use_ec,
        days=3650 - 1,
        crl_url=f"{base}/root.crl" if base else None,
    )
    _write_pair(folder, CA_CERT, CA_KEY, root, overwrite=False)
    _write_pair(folder, INTERMEDIATE_CERT, INTERMEDIATE_KEY, intermediate, overwrite=False)
    _save_settings(folder, Settings(base))
    write_crls(folder)
    return folder / CA_CERT, folder / CA_KEY


def _write_pair(folder: Path, cert_name: str, key_name: str, pair: KeyPair, *, overwrite: bool = True) -> None:
    write_atomic(folder / key_name, pair.key_pem, mode=0o600, overwrite=overwrite)
    write_atomic(folder / cert_name, pair.cert_pem, overwrite=overwrite)


def settings(folder: Path) -> Settings:
    try:
        raw = json.loads((folder / SETTINGS).read_text())
        return Settings(raw.get("crl_url"), int(raw.get("crl_number", 0)))
    except FileNotFoundError:
        return Settings(None)
    except (ValueError, AttributeError) as exc:
        raise KeyMaterialError(f"{folder / SETTINGS} cannot be read: {exc}", where=str(folder / SETTINGS)) from None


def _save_settings(folder: Path, values: Settings) -> None:
    text = json.dumps({"crl_url": values.crl_url, "crl_number": values.crl_number}, indent=2)
    write_atomic(folder / SETTINGS, text.encode() + b"\n")


def _load_pair(folder: Path, cert_name: str, key_name: str) -> KeyPair:
    cert_path, key_path = folder / cert_name, folder / key_name
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyMaterialError(
            f"no CA in {folder}: run `edxml-gateway pki init --dir {folder}` first", where=str(exc.filename)
        ) from None
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise KeyMaterialError(f"CA files in {folder} cannot be read: {exc}", where=str(folder)) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyMaterialError("the CA key is neither RSA nor EC", where=str(key_path))
    return KeyPair(key, certificate)


def load_ca(folder: Path) -> KeyPair:
    """The root."""
    return _load_pair(folder, CA_CERT, CA_KEY)


def load_issuer(folder: Path) -> KeyPair:
    """The CA that certifies agencies: the intermediate, or the root of a two-level folder."""
    if (folder / INTERMEDIATE_CERT).exists():
        return _load_pair(folder, INTERMEDIATE_CERT, INTERMEDIATE_KEY)
    return load_ca(folder)


def _crl_name(folder: Path) -> str:
    """The CRL that lists agencies' certificates: the intermediate's, or the root's."""
    return "intermediate.crl" if (folder / INTERMEDIATE_CERT).exists() else "root.crl"


def issue_to_dir(folder: Path, agency: str, name: str | None = None, *, use_ec: bool = False) -> tuple[Path, Path]:
    """Write folder/CODE.pem (with the intermediate after it) and folder/CODE.key."""
    code = AgencyCode.lenient(agency)
    issuer = load_issuer(folder)
    base = settings(folder).crl_url
    pair = issue(issuer, code.text, name, use_ec=use_ec, crl_url=f"{base}/{_crl_name(folder)}" if base else None)
    chain = pair.cert_pem + (issuer.cert_pem if issuer.certificate != load_ca(folder).certificate else b"")
    cert_path, key_path = folder / f"{code.text}.pem", folder / f"{code.text}.key"
    write_atomic(key_path, pair.key_pem, mode=0o600)
    write_atomic(cert_path, chain)
    return cert_path, key_path


def revoked(folder: Path) -> list[dict[str, str]]:
    try:
        entries = json.loads((folder / REVOKED).read_text())
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise KeyMaterialError(f"{folder / REVOKED} cannot be read: {exc}", where=str(folder / REVOKED)) from None
    if not isinstance(entries, list):
        raise KeyMaterialError(f"{folder / REVOKED} must hold a list", where=str(folder / REVOKED))
    return entries


def revoke(folder: Path, agency: str, *, at: datetime | None = None, reason: str = "unspecified") -> Revoked:
    """Revoke the agency's current certificate (folder/CODE.pem) from ``at`` (now), and issue
    the CRLs again so that `pki serve` publishes the revocation at once."""
    code = AgencyCode.lenient(agency)
    cert_path = folder / f"{code.text}.pem"
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError:
        raise KeyMaterialError(f"no certificate of {code} in {folder}", where=str(cert_path)) from None
    try:
        flag = x509.ReasonFlags(reason)
    except ValueError:
        choices = ", ".join(flag.value for flag in x509.ReasonFlags)
        raise KeyMaterialError(f"unknown revocation reason {reason!r}; one of {choices}") from None
    entry = Revoked(certificate.serial_number, (at or datetime.now(UTC)).replace(microsecond=0), flag)
    entries = [e for e in revoked(folder) if int(e["serial"], 16) != entry.serial]
    entries.append(
        {"serial": f"{entry.serial:x}", "agency": code.text, "at": entry.at.isoformat(), "reason": flag.value}
    )
    write_atomic(folder / REVOKED, json.dumps(entries, indent=2).encode() + b"\n")
    write_crls(folder)
    return entry


def write_crls(folder: Path, *, days: float = CRL_DAYS) -> list[Path]:
    """Issue the folder's CRLs anew, valid ``days``: the root's (no intermediate is ever revoked
    here) and the intermediate's, listing revoked.json."""
    values = settings(folder)
    number = values.crl_number + 1
    start = datetime.now(UTC) - timedelta(seconds=5)
    until = start + timedelta(days=days)
    listed = [
        Revoked(int(e["serial"], 16), datetime.fromisoformat(e["at"]), x509.ReasonFlags(e["reason"]))
        for e in revoked(folder)
    ]
    (folder / CRL_FOLDER).mkdir(exist_ok=True)
    root = load_ca(folder)
    issuer = load_issuer(folder)
    written = []
    if issuer.certificate != root.certificate:
        path = folder / CRL_FOLDER / "intermediate.crl"
        write_atomic(path, make_crl(issuer, listed, number=number, this_update=start, next_update=until))
        written.append(path)
    path = folder / CRL_FOLDER / "root.crl"
    root_listed = [] if written else listed
    write_atomic(path, make_crl(root, root_listed, number=number, this_update=start, next_update=until))
    written.append(path)
    _save_settings(folder, Settings(values.crl_url, number))
    return written


def crls_due(folder: Path) -> bool:
    """Whether the CRLs are past half their life (or missing): what `pki serve` issues anew."""
    for path in (folder / CRL_FOLDER).glob("*.crl"):
        crl = x509.load_der_x509_crl(path.read_bytes())
        span = crl.next_update_utc - crl.last_update_utc
        if datetime.now(UTC) >= crl.last_update_utc + span / 2:
            return True
    return not any((folder / CRL_FOLDER).glob("*.crl"))
