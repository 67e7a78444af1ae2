"""A province on one machine: the files an axis and its gateways need, as deployed.

`create` writes a development PKI (a CA and one certificate per agency), an axis.toml
with one connected system per agency, and per agency a folder with its secret; once the
axis listens, `configure_gateways` writes each gateway.toml pointing at it. The demo, the
end-to-end tests and the benchmarks all build their provinces here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway import pki_folder
from gateway.pki import KeyPair, create_ca, issue
from gateway.processes import Service

AXIS_CODE = "000.00.00.G22"

# Short intervals: a demo or a test wants to see things move within seconds.
QUICK_TIMING = """
[poll]
interval = 0.2
[workers]
intake = 0.2
push = 0.2
deliver = 0.2
respond = 0.2
retry = 0.5
housekeeping = 30.0
[intake]
settle_seconds = 0.3
[retry]
initial_seconds = 0.5
max_seconds = 2.0
deadline_hours = 1.0
"""


@dataclass
class AgencyFolder:
    """An installation's folder, or a hosted agency's (``hosted_by`` its installation's code):
    ``folder`` holds its outbox and inbox, where the configuration's defaults put them."""

    code: str
    name: str
    folder: Path
    config: Path
    hosted_by: str | None = None

    @property
    def outbox(self) -> Path:
        return self.folder / "outbox"

    @property
    def inbox(self) -> Path:
        return self.folder / "inbox"

    @property
    def database(self) -> Path:
        installation = self.folder.parent.parent if self.hosted_by else self.folder
        return installation / "var" / "gateway.sqlite3"


@dataclass
class Layout:
    root: Path
    axis_folder: Path
    axis_config: Path
    agencies: dict[str, AgencyFolder] = field(default_factory=dict)  # installations
    hosted: dict[str, AgencyFolder] = field(default_factory=dict)  # agencies hosted by one of them


def create(
    root: Path,
    agencies: Mapping[str, str],
    *,
    axis_port: int = 0,
    verify_signatures: bool = True,
    hosted: Mapping[str, Mapping[str, str]] | None = None,
    ca: KeyPair | None = None,
    axis_name: str = "axis",
    axis_code: str = AXIS_CODE,
    relays: tuple[str, ...] = (),
    crl_url: str | None = None,
) -> Layout:
    """Write the PKI, the axis configuration and one folder per installation under ``root``.

    ``hosted`` maps an installation's code to the agencies it hosts (code: name): each gets
    its certificate, and a folder under its installation's ``hosted/``; the axis does not
    declare them (the installation registers them at start, as a real one does).

    Several axes under one root (gateway/country.py) share one ``ca`` and ``pki/``; each has
    its folder ``axis_name`` and its own ``axis_code``; ``relays`` are the system ids of the
    provincial axes bridged to this one (their agencies are registered by their bridges).

    ``crl_url``: the PKI is made as `edxml-gateway pki` makes it, root → issuing CA → agencies,
    every certificate naming its CRL under that address (served by `pki serve --dir root/pki`).
    """
    pki = root / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    if crl_url is not None:
        if not (pki / pki_folder.CA_CERT).exists():
            pki_folder.init_dir(pki, crl_url=crl_url)

        def certify(code: str, name: str, use_ec: bool = False) -> None:
            pki_folder.issue_to_dir(pki, code, name, use_ec=use_ec)

    else:
        if ca is None:
            ca = create_ca("edxml-gateway demo CA")
            (pki / "ca.pem").write_bytes(ca.cert_pem)
        issuer = ca

        def certify(code: str, name: str, use_ec: bool = False) -> None:
            pair = issue(issuer, code, name, use_ec=use_ec)
            (pki / f"{code}.pem").write_bytes(pair.cert_pem)
            (pki / f"{code}.key").write_bytes(pair.key_pem)
            (pki / f"{code}.key").chmod(0o600)

    axis_folder = root / axis_name
    axis_folder.mkdir()
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {axis_port}",
        'data_dir = "data"',
        f'code = "{axis_code}"',
        "fail_retry_seconds = 1",
        f"verify_signatures = {str(verify_signatures).lower()}",
        'trust = "../pki/ca.pem"',
    ]
    layout = Layout(root, axis_folder, axis_folder / "axis.toml")
    for code, name in agencies.items():
        secret = secrets.token_hex(16)
        (axis_folder / f"{code}.secret").write_text(secret + "\n")
        lines += ["[[systems]]", f'id = "sys-{code}"', f'secret_file = "{code}.secret"', f'agencies = ["{code}"]']
        certify(code, name, use_ec=code.endswith(".11.H58"))
        folder = root / code
        folder.mkdir()
        (folder / "secret.txt").write_text(secret + "\n")
        (folder / "secret.txt").chmod(0o600)
        layout.agencies[code] = AgencyFolder(code, name, folder, folder / "gateway.toml")
    for system_id in relays:
        secret = secrets.token_hex(16)
        (axis_folder / f"{system_id}.secret").write_text(secret + "\n")
        lines += ["[[systems]]", f'id = "{system_id}"', f'secret_file = "{system_id}.secret"', "agencies = []"]
    for code, name in agencies.items():
        lines += ["[[agencies]]", f'code = "{code}"', f'name = "{name}"']
    layout.axis_config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for installation, units in (hosted or {}).items():
        host = layout.agencies[installation]
        for code, name in units.items():
            certify(code, name)
            folder = host.folder / "hosted" / code
            layout.hosted[code] = AgencyFolder(code, name, folder, host.config, hosted_by=installation)
    return layout


def start_axis(layout: Layout) -> tuple[Service, str]:
    """Start the axis; a configuration that let the system choose the port (0) is given the port
    it got, so that the axis started again by hand listens where the gateways look for it."""
    service = Service(
        ["axis", "--config", str(layout.axis_config)], cwd=layout.axis_folder, log_path=layout.axis_folder / "axis.log"
    )
    listening = service.wait_for(lambda e: e.get("event") == "axis_listening", "the axis to listen")
    text = layout.axis_config.read_text(encoding="utf-8")
    if "\nport = 0\n" in text:
        layout.axis_config.write_text(text.replace("\nport = 0\n", f"\nport = {listening['port']}\n"), encoding="utf-8")
    return service, f"http://127.0.0.1:{listening['port']}"


def configure_gateways(layout: Layout, axis_url: str, *, timing: str = QUICK_TIMING) -> None:
    for code, agency in layout.agencies.items():
        agency.config.write_text(
            "\n".join(
                [
                    "[agency]",
                    f'code = "{code}"',
                    f'name = "{agency.name}"',
                    "[axis]",
                    f'url = "{axis_url}"',
                    f'system_id = "sys-{code}"',
                    'secret_file = "secret.txt"',
                    "timeout_seconds = 10.0",
                    "[signing]",
                    f'key = "../pki/{code}.key"',
                    f'cert = "../pki/{code}.pem"',
                    'trust = "../pki/ca.pem"',
                ]
            )
            + "\n"
            + timing
            + hosted_tables(layout, code),
            encoding="utf-8",
        )


def hosted_tables(layout: Layout, installation: str) -> str:
    """The [[hosted]] tables of an installation: code and name, the rest by default."""
    tables = [
        f'\n[[hosted]]\ncode = "{unit.code}"\nname = "{unit.name}"\n'
        for unit in layout.hosted.values()
        if unit.hosted_by == installation
    ]
    return "".join(tables)


def start_gateway(agency: AgencyFolder, *, overrides: Path | None = None) -> Service:
    extra = ["--overrides", str(overrides)] if overrides else []
    service = Service(
        ["run", "--config", str(agency.config), *extra], cwd=agency.folder, log_path=agency.folder / "gateway.log"
    )
    service.wait_for(lambda e: e.get("event") == "gateway_started", f"the gateway of {agency.code} to start")
    return service
