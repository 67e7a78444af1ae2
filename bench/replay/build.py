"""The province on disk: its PKI, the national and provincial axes' configurations, and one
folder per installation (45 in the province, 3 outside), as `edxml-gateway` deploys them.

    root/pki/                 ca.pem, ca.key, CODE.key and CODE.pem for every agency
    root/national-axis/       axis.toml, one secret per connected system
    root/tien-giang-axis/     axis.toml with [upstream]; its secrets
    root/province/CODE/       gateway.toml (with [[hosted]]), secret.txt; hosted/UNIT/{outbox,inbox}
    root/outside/CODE/        the same for the agencies outside the province

Certificates are valid from 2023-06-01 for five years: the replay's clock reads Q3 2023, and a
province kept with --keep still starts today. Keys are RSA 2048, as the agencies' CA issues
them: one pair per installation, a certificate on it for every agency it hosts (write_pki).
"""

from __future__ import annotations

import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.replay.shape import Installation, Shape

NATIONAL_CODE = "000.00.00.G22"  # the axis's own code in the TraceHeaders it appends
PROVINCIAL_CODE = "000.00.00.H58"
RELAY_SYSTEM = "sys-tien-giang-axis"
VALID_FROM = datetime(2023, 6, 1, tzinfo=UTC)
VALID_DAYS = 5 * 365
# The bridge's timings: the national axis answers within seconds here.
UPSTREAM_TIMING = (
    "poll_interval = 0.5\nretry_initial_seconds = 0.5\nretry_max_seconds = 5.0\ndirectory_seconds = 60.0\n"
)


@dataclass(frozen=True)
class Folders:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def national(self) -> Path:
        return self.root / "national-axis"

    @property
    def provincial(self) -> Path:
        return self.root / "tien-giang-axis"

    @property
    def province(self) -> Path:
        """The folder `edxml-gateway report --config` is given: the 45 installations."""
        return self.root / "province"

    def installation(self, installation: Installation) -> Path:
        return (self.root / "outside" if installation.outside else self.province) / installation.code

    def inbox(self, shape: Shape, code: str) -> Path:
        agency = shape.agencies[code]
        folder = self.installation(shape.installations[agency.installation])
        return folder / "inbox" if agency.is_installation else folder / "hosted" / code / "inbox"

    def outbox(self, shape: Shape, code: str) -> Path:
        return self.inbox(shape, code).with_name("outbox")

    def process_folders(self, shape: Shape) -> list[Path]:
        """Where each of the province's processes runs and logs: both axes, every installation."""
        return [self.national, self.provincial, *(self.installation(i) for i in shape.installations.values())]


def _issue_batch(
    ca_pem: tuple[bytes, bytes], installations: list[tuple[str, str, list[tuple[str, str]]]]
) -> list[tuple[str, bytes, bytes]]:
    """Each installation's key pair, and a certificate on it for its own agency and each one it hosts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from gateway.pki import KeyPair, issue

    key = serialization.load_pem_private_key(ca_pem[0], password=None)
    ca = KeyPair(key, x509.load_pem_x509_certificate(ca_pem[1]))  # type: ignore[arg-type]
    issued = []
    for code, name, hosted in installations:
        own = issue(ca, code, name, not_before=VALID_FROM, days=VALID_DAYS)
        issued.append((code, own.key_pem, own.cert_pem))
        for unit, unit_name in hosted:
            pair = issue(ca, unit, unit_name, not_before=VALID_FROM, days=VALID_DAYS, key=own.key)
            issued.append((unit, pair.key_pem, pair.cert_pem))
    return issued


def write_pki(folder: Path, shape: Shape, workers: int = 2) -> None:
    """A CA, and per installation one RSA 2048 key pair: a certificate on it for the
    installation's agency and for each agency it hosts. Each agency signs with its own
    certificate and a key of the real size, so every signature and check costs what it does in
    production; sharing the pair within an installation saves 1,148 key generations (about
    30 s of both cores) that would buy the replay nothing."""
    from gateway.pki import create_ca

    folder.mkdir(parents=True)
    ca = create_ca("Tiền Giang replay CA", not_before=VALID_FROM, days=20 * 365)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "ca.key").write_bytes(ca.key_pem)
    (folder / "ca.key").chmod(0o600)
    todo = [(i.code, i.name, [(a.code, a.name) for a in i.hosted]) for i in shape.installations.values()]
    batches = [todo[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        for issued in pool.map(_issue_batch, [(ca.key_pem, ca.cert_pem)] * len(batches), batches):
            for code, key_pem, cert_pem in issued:
                (folder / f"{code}.key").write_bytes(key_pem)
                (folder / f"{code}.key").chmod(0o600)
                (folder / f"{code}.pem").write_bytes(cert_pem)


def _secret(path: Path) -> str:
    value = secrets.token_hex(16)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _axis_config(
    folder: Path, code: str, systems: list[tuple[str, list[str]]], agencies: list[tuple[str, str]]
) -> None:
    folder.mkdir(parents=True)
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "port = 0",
        'data_dir = "data"',
        f'code = "{code}"',
        "verify_signatures = true",
        'trust = "../pki/ca.pem"',
    ]
    for system_id, codes in systems:
        _secret(folder / f"{system_id}.secret")
        listed = ", ".join(f'"{c}"' for c in codes)
        lines += ["[[systems]]", f'id = "{system_id}"', f'secret_file = "{system_id}.secret"', f"agencies = [{listed}]"]
    for agency_code, name in agencies:
        lines += ["[[agencies]]", f'code = "{agency_code}"', f'name = "{name}"']
    (folder / "axis.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_province(folders: Folders, shape: Shape) -> None:
    """Everything but the axes' addresses (known once they listen): see :func:`connect`."""
    write_pki(folders.pki, shape)
    inside = [i for i in shape.installations.values() if not i.outside]
    outside = [i for i in shape.installations.values() if i.outside]
    _axis_config(
        folders.national,
        NATIONAL_CODE,
        [(f"sys-{i.code}", [i.code]) for i in outside] + [(RELAY_SYSTEM, [])],
        [(i.code, i.name) for i in outside],
    )
    _axis_config(
        folders.provincial,
        PROVINCIAL_CODE,
        [(f"sys-{i.code}", [i.code]) for i in inside],
        [(i.code, i.name) for i in inside],
    )
    for installation in shape.installations.values():
        folder = folders.installation(installation)
        folder.mkdir(parents=True)
        axis = folders.national if installation.outside else folders.provincial
        (folder / "secret.txt").write_text((axis / f"sys-{installation.code}.secret").read_text())
        (folder / "secret.txt").chmod(0o600)


def bridge(folders: Folders, national_url: str) -> None:
    """The provincial axis's [upstream], once the national axis listens."""
    secret = (folders.national / f"{RELAY_SYSTEM}.secret").read_text()
    (folders.provincial / "upstream.secret").write_text(secret)
    (folders.provincial / "upstream.secret").chmod(0o600)
    config = folders.provincial / "axis.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[upstream]\nurl = "{national_url}"\nsystem_id = "{RELAY_SYSTEM}"\nsecret_file = "upstream.secret"\n'
        + UPSTREAM_TIMING,
        encoding="utf-8",
    )


def write_gateways(folders: Folders, shape: Shape, national_url: str, provincial_url: str) -> None:
    """Every gateway.toml, once the axes listen: the packaged defaults, the agency's own key."""
    for installation in shape.installations.values():
        url = national_url if installation.outside else provincial_url
        hosted = "".join(f'\n[[hosted]]\ncode = "{a.code}"\nname = "{a.name}"\n' for a in installation.hosted)
        text = "\n".join(
            [
                "[agency]",
                f'code = "{installation.code}"',
                f'name = "{installation.name}"',
                "[axis]",
                f'url = "{url}"',
                f'system_id = "sys-{installation.code}"',
                'secret_file = "secret.txt"',
                "[signing]",
                f'key = "../../pki/{installation.code}.key"',
                f'cert = "../../pki/{installation.code}.pem"',
                'trust = "../../pki/ca.pem"',
            ]
        )
        (folders.installation(installation) / "gateway.toml").write_text(text + "\n" + hosted, encoding="utf-8")
