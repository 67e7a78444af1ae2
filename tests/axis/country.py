"""A country on loopback: a national axis, Tiền Giang's provincial axis bridged to it, and
gateways under each, every one a real process with one development PKI.

Plain code, no pytest: benchmarks and the demo may use it from an installation without test tools.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from gateway import workspace
from gateway.pki import create_ca, issue
from tests.axis.running import RunningAxis, start_axis
from tests.e2e.province import Agency, Province

NATIONAL_CODE, PROVINCIAL_CODE = "000.00.00.G22", "000.00.00.H58"  # the axes' own codes (TraceHeader)
MINISTRY, OTHER_PROVINCE = "000.00.00.G22", "000.00.00.H57"
PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
NAMES = {
    MINISTRY: "Văn phòng Chính phủ",
    OTHER_PROVINCE: "UBND tỉnh Thừa Thiên Huế",
    PROVINCE: "UBND tỉnh Tiền Giang",
    DEPARTMENT: "Sở Nội vụ tỉnh Tiền Giang",
}
NATIONAL_AGENCIES = (MINISTRY, OTHER_PROVINCE)  # each a gateway of its own on the national axis
PROVINCIAL_AGENCIES = (PROVINCE, DEPARTMENT)  # each a gateway on the provincial axis
PROVINCIAL_SYSTEM = "sys-tiengiang-axis"  # the provincial axis, as a system of the national one

QUICK_UPSTREAM = """poll_interval = 0.2
retry_initial_seconds = 0.2
retry_max_seconds = 1.0
directory_seconds = 30.0
timeout_seconds = 5.0
"""


@dataclass
class Country(Province):
    """Province's gateways (``agencies``), with the national axis as ``axis`` and the provincial one."""

    provincial: RunningAxis | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def start_national(self) -> RunningAxis:
        self.axis = start_axis(self.root / "national", self.root / "national" / "axis.toml")
        return self.axis

    def start_provincial(self) -> RunningAxis:
        folder = self.root / "provincial"
        self.provincial = start_axis(folder, folder / "axis.toml")
        return self.provincial

    def stop_all(self) -> None:
        super().stop_all()
        if self.provincial is not None:
            self.provincial.service.stop()


def build_country(root: Path, *, national_port: int, provincial_port: int, upstream: str = QUICK_UPSTREAM) -> Country:
    """Write the PKI, both axes' configurations (fixed ports: a restarted axis is where the others
    look for it) and every gateway's; start nothing."""
    pki = root / "pki"
    pki.mkdir(parents=True)
    ca = create_ca("edxml-gateway test CA")
    (pki / "ca.pem").write_bytes(ca.cert_pem)
    for code, name in NAMES.items():
        pair = issue(ca, code, name)
        (pki / f"{code}.pem").write_bytes(pair.cert_pem)
        (pki / f"{code}.key").write_bytes(pair.key_pem)
    country = Country(root)
    for system in (*NATIONAL_AGENCIES, *PROVINCIAL_AGENCIES, PROVINCIAL_SYSTEM):
        country.secrets[system] = secrets.token_hex(16)
    national = root / "national"
    national.mkdir()
    systems = [(f"sys-{code}", [code]) for code in NATIONAL_AGENCIES] + [(PROVINCIAL_SYSTEM, [])]
    _axis_config(national, NATIONAL_CODE, national_port, systems, NATIONAL_AGENCIES, country.secrets)
    provincial = root / "provincial"
    provincial.mkdir()
    (provincial / "upstream.secret").write_text(country.secrets[PROVINCIAL_SYSTEM] + "\n")
    _axis_config(
        provincial,
        PROVINCIAL_CODE,
        provincial_port,
        [(f"sys-{code}", [code]) for code in PROVINCIAL_AGENCIES],
        PROVINCIAL_AGENCIES,
        country.secrets,
        extra=f'[upstream]\nurl = "http://127.0.0.1:{national_port}"\nsystem_id = "{PROVINCIAL_SYSTEM}"\n'
        f'secret_file = "upstream.secret"\n{upstream}',
    )
    for code in (*NATIONAL_AGENCIES, *PROVINCIAL_AGENCIES):
        port = national_port if code in NATIONAL_AGENCIES else provincial_port
        folder = root / code
        folder.mkdir()
        (folder / "secret.txt").write_text(country.secrets[code] + "\n")
        (folder / "secret.txt").chmod(0o600)
        config = folder / "gateway.toml"
        config.write_text(
            f'[agency]\ncode = "{code}"\nname = "{NAMES[code]}"\n'
            f'[axis]\nurl = "http://127.0.0.1:{port}"\nsystem_id = "sys-{code}"\nsecret_file = "secret.txt"\n'
            "timeout_seconds = 10.0\n"
            f'[signing]\nkey = "../pki/{code}.key"\ncert = "../pki/{code}.pem"\ntrust = "../pki/ca.pem"\n'
            + workspace.QUICK_TIMING,
            encoding="utf-8",
        )
        country.agencies[code] = Agency(code, NAMES[code], folder, config)
    return country


def _axis_config(
    folder: Path,
    code: str,
    port: int,
    systems: list[tuple[str, list[str]]],
    agencies: tuple[str, ...],
    keys: dict[str, str],
    *,
    extra: str = "",
) -> None:
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        'data_dir = "data"',
        f'code = "{code}"',
        "fail_retry_seconds = 1",
        "verify_signatures = true",
        'trust = "../pki/ca.pem"',
    ]
    for system_id, codes in systems:
        key = system_id.removeprefix("sys-")
        (folder / f"{system_id}.secret").write_text(keys[key if key in keys else system_id] + "\n")
        listed = ", ".join(f'"{c}"' for c in codes)
        lines += ["[[systems]]", f'id = "{system_id}"', f'secret_file = "{system_id}.secret"', f"agencies = [{listed}]"]
    for agency in agencies:
        lines += ["[[agencies]]", f'code = "{agency}"', f'name = "{NAMES[agency]}"']
    (folder / "axis.toml").write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
