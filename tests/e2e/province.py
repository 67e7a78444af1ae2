"""A small province on loopback: an axis and gateways as real processes, each with its own
configuration, database, drop folder and inbox, exactly as they would be deployed.

Plain code, no pytest: the benchmarks use it from an installation without test tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import edxml, workspace
from gateway.axis_client import AxisClient
from gateway.processes import Service
from gateway.store import GatewayStore
from gateway.vxp.vocabulary import MessageType
from tests.axis.running import start_axis

AGENCIES = {
    "000.00.00.G22": "Văn phòng Chính phủ",
    "000.00.00.H58": "UBND tỉnh Tiền Giang",
    "000.00.11.H58": "Sở Nội vụ tỉnh Tiền Giang",
    "000.00.31.H58": "UBND huyện Cái Bè",
}


@dataclass
class Agency(workspace.AgencyFolder):
    """An agency's folder (workspace.AgencyFolder: outbox, inbox, database) and its running service."""

    service: Service | None = None

    @contextlib.contextmanager
    def store(self) -> Iterator[GatewayStore]:
        """The gateway's record, opened beside the running service (SQLite WAL allows it)."""
        opened = GatewayStore(self.database.parent)
        try:
            yield opened
        finally:
            opened.close()

    def raw_db(self) -> sqlite3.Connection:
        """The database without the store: only to fabricate a moment no store method makes
        (a crash between two steps), never to read what the gateway did."""
        connection = sqlite3.connect(self.database, timeout=10)
        connection.row_factory = sqlite3.Row
        return connection

    def delivered(self) -> list[dict[str, Any]]:
        """The documents in the inbox, as the document system sees them."""
        found = []
        if self.inbox.is_dir():
            for folder in sorted(self.inbox.iterdir()):
                if not folder.name.startswith(".") and (folder / "document.json").is_file():
                    found.append(json.loads((folder / "document.json").read_text(encoding="utf-8")))
        return found

    def receipts(self) -> list[tuple[str, str, str]]:
        """(DocumentId, recipient, status code) of every status received about our documents."""
        with self.store() as store:
            received = store.reports.statuses_received()
        return sorted((document_id, r.from_code, r.status_code) for document_id, r in received)


@dataclass
class Province:
    root: Path
    axis: Any = None
    agencies: dict[str, Agency] = field(default_factory=dict)  # installations
    hosted: dict[str, Agency] = field(default_factory=dict)  # agencies an installation hosts (no service)

    def agency(self, code: str) -> Agency:
        """An installation or a hosted agency, by its code."""
        return self.agencies.get(code) or self.hosted[code]

    def restart_axis(self, server_line: str) -> None:
        """The axis stopped and started again on its port with one more [server] line (an
        extension turned off, say); build the province with axis_port for the port to stay."""
        self.axis.service.stop()
        config = self.axis.config_path
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[server]\n", f"[server]\n{server_line}\n", 1), encoding="utf-8")
        self.axis = start_axis(self.axis.folder, config)

    def start(
        self, code: str, extra: str = "", *, env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()
    ) -> Agency:
        agency = self.agencies[code]
        if extra:
            agency.config.write_text(agency.config.read_text(encoding="utf-8") + extra, encoding="utf-8")
        agency.service = Service(
            ["run", "--config", str(agency.config)],
            cwd=agency.folder,
            log_path=agency.folder / "gateway.log",
            env=env,
            wrapper=wrapper,
        )
        agency.service.wait_for(lambda e: e.get("event") == "gateway_started", f"{code} to start")
        return agency

    def drop_job(self, code: str, name: str, job: dict[str, Any], files: dict[str, bytes]) -> None:
        """Write a job folder the way a document system should: hidden first, renamed when complete."""
        outbox = self.agency(code).outbox
        outbox.mkdir(parents=True, exist_ok=True)
        hidden = outbox / f".{name}"
        hidden.mkdir()
        (hidden / "document.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        for file_name, data in files.items():
            (hidden / file_name).write_bytes(data)
        hidden.rename(outbox / name)

    def run(self, *args: str) -> Any:
        import subprocess
        import sys

        return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120)

    def stop_all(self) -> None:
        for agency in self.agencies.values():
            if agency.service is not None:
                agency.service.stop()
        if self.axis is not None:
            self.axis.service.stop()


def send_directly(province, sender: str, data: bytes) -> str:
    """What another vendor's gateway could send: through the axis, not through our intake."""
    secret = (province.root / "axis" / f"{sender}.secret").read_text().strip()

    async def go() -> str:
        async with AxisClient(province.axis.url, f"sys-{sender}", secret) as client:
            return await client.send_edoc(data, message_type=MessageType.EDOC, from_code=sender)

    return asyncio.run(go())


def signed_by(province, code: str, document: edxml.Document) -> bytes:
    """``document`` signed with ``code``'s key from the province's test PKI."""
    pki = province.root / "pki"
    identity = edxml.SigningIdentity.from_pem((pki / f"{code}.key").read_bytes(), (pki / f"{code}.pem").read_bytes())
    return edxml.sign_message(document, identity)


def to(document: edxml.Document, code: str, **changes) -> edxml.Document:
    """``document`` addressed to ``code`` alone, without business references."""
    recipient = dataclasses.replace(document.to[0], organ_id=edxml.AgencyCode(code))
    return dataclasses.replace(document, to=(recipient,), business=None, **changes)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_province(
    root: Path,
    codes: list[str] | None = None,
    *,
    axis_port: int = 0,
    timing: str | None = None,
    hosted: dict[str, dict[str, str]] | None = None,
    crl_url: str | None = None,
) -> Province:
    """The package's own province layout (gateway/workspace.py), with the test suite's conveniences.

    ``timing`` is TOML appended to each gateway's configuration: None for the test suite's
    short intervals, "" for the packaged defaults. ``hosted``: installation code → {code: name}
    of the agencies it hosts ([[hosted]]). ``crl_url``: a three-level PKI whose certificates
    name CRLs there (workspace.create).
    """
    codes = codes or list(AGENCIES)
    layout = workspace.create(
        root, {code: AGENCIES[code] for code in codes}, axis_port=axis_port, hosted=hosted, crl_url=crl_url
    )
    province = Province(root)
    province.axis = start_axis(layout.axis_folder, layout.axis_config)
    if timing is None:
        workspace.configure_gateways(layout, province.axis.url)
    else:
        workspace.configure_gateways(layout, province.axis.url, timing=timing)
    for code, folder in layout.agencies.items():
        province.agencies[code] = Agency(**vars(folder))
    for code, folder in layout.hosted.items():
        province.hosted[code] = Agency(**vars(folder))
    return province


def job(subject: str, recipients: list[str]) -> dict:
    """A drop-folder job: its number is the subject's last character ("Văn bản 3")."""
    return {"to": recipients, "subject": subject, "code_number": subject[-1], "code_notation": "UBND"}


def rejections(inbox: Path) -> list[str]:
    """The reasons of what a recipient refused (inbox/.rejected/*/reason.txt)."""
    rejected = inbox / ".rejected"
    if not rejected.is_dir():
        return []
    return [(p / "reason.txt").read_text() for p in sorted(rejected.iterdir()) if (p / "reason.txt").is_file()]
