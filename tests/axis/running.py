"""A real axis process on 127.0.0.1 with a port the OS chose: its configuration and how to start it.

Plain code, no pytest: the benchmarks use it from an installation without test tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.processes import Service

SYSTEMS = {
    # system id: (secret, agencies, legacy SDK client)
    "sys-h58": ("secret-of-tien-giang-province", ["000.00.00.H58", "000.00.11.H58", "000.00.31.H58"], False),
    "sys-g22": ("secret-of-the-government-office", ["000.00.00.G22"], False),
    "sys-h41": ("secret-of-nghe-an-province-ubnd", ["000.00.00.H41"], False),
    "sys-legacy": ("secret-of-a-legacy-sdk-client", ["000.00.00.H14"], True),
}
AGENCIES = {
    "000.00.00.H58": "UBND tỉnh Tiền Giang",
    "000.00.11.H58": "Sở Nội vụ tỉnh Tiền Giang",
    "000.00.31.H58": "UBND huyện Cái Bè",
    "000.00.00.G22": "Văn phòng Chính phủ",
    "000.00.00.H41": "UBND tỉnh Nghệ An",
    "000.00.00.H14": "UBND tỉnh Cao Bằng",
    "000.00.00.H30": "UBND tỉnh Hậu Giang",  # registered, belongs to no system
}
LOCKED = {"000.00.00.H30"}


@dataclass
class RunningAxis:
    service: Service
    folder: Path
    port: int
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def secret(self, system_id: str) -> str:
        return SYSTEMS[system_id][0]


def write_config(folder: Path, *, extra_server: str = "") -> Path:
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        "port = 0",
        'data_dir = "axis-data"',
        'code = "000.00.00.G22"',
        "fail_retry_seconds = 1",
        extra_server,
    ]
    for system_id, (secret, agencies, legacy) in SYSTEMS.items():
        (folder / f"{system_id}.secret").write_text(secret + "\n")
        lines += ["[[systems]]", f'id = "{system_id}"', f'secret_file = "{system_id}.secret"']
        lines += [f"agencies = {agencies!r}".replace("'", '"'), f"legacy_sdk = {str(legacy).lower()}"]
    for code, name in AGENCIES.items():
        lines += ["[[agencies]]", f'code = "{code}"', f'name = "{name}"', f"locked = {str(code in LOCKED).lower()}"]
    path = folder / "axis.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_axis(folder: Path, config_path: Path) -> RunningAxis:
    service = Service(["axis", "--config", str(config_path)], cwd=folder, log_path=folder / "axis.log")
    listening = service.wait_for(lambda e: e.get("event") == "axis_listening", "the axis to listen")
    return RunningAxis(service, folder, int(listening["port"]), config_path)
