"""Gateways use our axis's batching (small messages carried in the list, a round acknowledged
in one updateStatus, a round of answers sent in one sendEdoc) when it announces it, and the
plain calls with an axis that does not."""

from __future__ import annotations

import functools
import signal

from gateway.axis.store import AxisStore
from tests.e2e.province import build_province, free_port, wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
DOCUMENTS = 6


def calls(province, name: str) -> int:
    """Calls of ``name`` the axis has seen (its replay memory keeps every one)."""
    store = AxisStore(province.axis.folder / "data")
    try:
        return store.requests_remembered(name)
    finally:
        store.close()


def listable(province, kind: str) -> int:
    store = AxisStore(province.axis.folder / "data")
    try:
        return store.count_listable({DEPARTMENT}, kind)
    finally:
        store.close()


def nothing_listed(store: AxisStore, kind: str) -> bool:
    return store.count_listable({DEPARTMENT, PROVINCE}, kind) == 0


def exchange_while_the_recipient_is_paused(province) -> None:
    """One document to start with (a gateway learns what the axis announces from its answers),
    then documents arrive while the recipient is paused (SIGSTOP), and it takes them together."""
    sender, recipient = province.start(PROVINCE), province.start(DEPARTMENT)
    province.drop_job(PROVINCE, "first", {"to": [DEPARTMENT], "subject": "Văn bản đầu tiên"}, {})
    wait_until(lambda: len(sender.receipts()) == 1, "the first 01")
    recipient.service.process.send_signal(signal.SIGSTOP)
    try:
        for n in range(DOCUMENTS):
            province.drop_job(PROVINCE, f"job-{n}", {"to": [DEPARTMENT], "subject": f"Văn bản số {n}"}, {})
        wait_until(lambda: listable(province, "edoc") == DOCUMENTS, "the documents at the axis")
    finally:
        recipient.service.process.send_signal(signal.SIGCONT)
    wait_until(lambda: len(sender.receipts()) == 1 + DOCUMENTS, "every 01 back")
    assert len(recipient.delivered()) == 1 + DOCUMENTS
    # every delivery acknowledged: nothing is listed for anyone any more (a 01 is recorded
    # before its round's acknowledgement reaches the axis, so this may take a moment)
    store = AxisStore(province.axis.folder / "data")
    try:
        for kind in ("edoc", "status"):
            wait_until(functools.partial(nothing_listed, store, kind), f"every {kind} acknowledged")
    finally:
        store.close()


def test_small_messages_come_with_the_list_and_a_round_is_acknowledged_at_once(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        exchange_while_the_recipient_is_paused(province)
        # a gateway's very first list is plain (it has not heard the announcement yet): at most
        # the first document is fetched; everything after travelled in the lists
        assert calls(province, "getEdoc") <= 1
        # one call each for the first document and its 01; the six documents in one or two
        # (the axis answers a waiting list at the first arrival), their 01s as they came back
        assert calls(province, "updateStatus") <= 2 + 2 + DOCUMENTS < 2 * (1 + DOCUMENTS)
    finally:
        province.stop_all()


def test_a_round_of_answers_goes_to_the_axis_in_one_send(tmp_path):
    """Answers queued while the gateway was stopped (the `respond` command works without it) are
    all due at its start: one sendEdoc carries them, and each reaches the sender once."""
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT])
    try:
        sender, recipient = province.start(PROVINCE), province.start(DEPARTMENT)
        for n in range(DOCUMENTS):
            province.drop_job(PROVINCE, f"job-{n}", {"to": [DEPARTMENT], "subject": f"Văn bản số {n}"}, {})
        wait_until(lambda: len(sender.receipts()) == DOCUMENTS, "every 01 back")
        recipient.service.stop()
        before = calls(province, "sendEdoc")
        for received in recipient.delivered():
            answered = province.run("respond", "--config", str(recipient.config), received["id"], "--code", "03")
            assert answered.returncode == 0, answered.stderr
        province.start(DEPARTMENT)
        wait_until(lambda: len(sender.receipts()) == 2 * DOCUMENTS, "every 03 back")
        # one call, or two when the first answer a restarted gateway hears is the one that
        # tells it the axis takes several messages a call (it sends one alone to learn it)
        assert calls(province, "sendEdoc") <= before + 2
        assert sorted(code for _, _, code in sender.receipts()) == ["01"] * DOCUMENTS + ["03"] * DOCUMENTS
    finally:
        province.stop_all()


def test_an_axis_without_batching_gets_the_plain_calls(tmp_path):
    province = build_province(tmp_path, [PROVINCE, DEPARTMENT], axis_port=free_port())
    try:
        province.restart_axis("batching = false")
        exchange_while_the_recipient_is_paused(province)
        assert calls(province, "getEdoc") == 2 * (1 + DOCUMENTS)
        assert calls(province, "updateStatus") == 2 * (1 + DOCUMENTS)
        assert calls(province, "sendEdoc") == 2 * (1 + DOCUMENTS)  # each message its own call
    finally:
        province.stop_all()
