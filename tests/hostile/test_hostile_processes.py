"""Hostile peers and damaged state against real processes: refused clearly, the service stays up."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import time

from gateway import edxml
from gateway.axis_client import AxisClient
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import wait_until
from tests.messages import full_status

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"


def test_a_slow_client_does_not_block_others(axis):
    """A slowloris-style trickle of headers holds one connection, not the axis."""
    slow = socket.create_connection(("127.0.0.1", axis.port))
    slow.sendall(b"POST /getReceivedEdocList HTTP/1.1\r\nHost: x\r\n")
    try:

        async def normal() -> float:
            async with AxisClient(axis.url, "sys-h58", axis.secret("sys-h58"), timeout=10) as client:
                start = time.monotonic()
                await client.received_list()
                return time.monotonic() - start

        for _ in range(5):
            slow.sendall(b"X-Trickle: 1\r\n")
            assert asyncio.run(normal()) < 5
    finally:
        slow.close()
    assert axis.service.process.poll() is None


def test_a_corrupt_database_is_refused_at_start_and_left_as_it_was(province):
    agency = province.agencies[PROVINCE]
    database = agency.folder / "var" / "gateway.sqlite3"
    database.parent.mkdir(parents=True)
    garbage = b"this is not a database " * 100
    database.write_bytes(garbage)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(agency.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "DB700" in result.stderr and "gateway.sqlite3" in result.stderr and "Traceback" not in result.stderr
    assert database.read_bytes() == garbage


def test_statuses_about_documents_we_never_sent_are_refused_and_acknowledged(province):
    """A status for a document that does not exist, or that went to someone else, never becomes a receipt."""
    receiver = province.start(PROVINCE)
    secret = (province.root / "axis" / f"{DEPARTMENT}.secret").read_text().strip()
    pki = province.root / "pki"
    identity = edxml.SigningIdentity.from_pem(
        (pki / f"{DEPARTMENT}.key").read_bytes(), (pki / f"{DEPARTMENT}.pem").read_bytes()
    )
    invented = full_status(edxml.StatusCode.FINISHED, sender=DEPARTMENT)
    invented = dataclasses.replace(
        invented,
        response_for=dataclasses.replace(
            invented.response_for, organ_id=edxml.AgencyCode(PROVINCE), document_id=f"{PROVINCE},2026/11/25,999/NONE"
        ),
    )

    async def send() -> str:
        async with AxisClient(province.axis.url, f"sys-{DEPARTMENT}", secret) as client:
            return await client.send_edoc(
                edxml.sign_message(invented, identity), message_type="status", from_code=DEPARTMENT
            )

    asyncio.run(send())
    event = receiver.service.wait_for(lambda e: e.get("event") == "status_rejected", "the refusal")
    assert f"not a document {PROVINCE} sent" in event["reason"] and event["peer"] == DEPARTMENT
    assert receiver.receipts() == []

    def acknowledged() -> bool:
        with receiver.store() as store:
            (status,) = store.reports.incoming_for_kind(MessageType.STATUS)
        return status.acked == 1

    wait_until(acknowledged, "the acknowledgement")
    assert receiver.service.process.poll() is None
