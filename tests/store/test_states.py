"""Every state change of a message goes through the store's transition table: each move the
table allows works, each other one raises DB701 and leaves the row as it was."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gateway.errors import IllegalTransition
from gateway.store import (
    INCOMING_MOVES,
    OUTGOING_MOVES,
    GatewayStore,
    IncomingState,
    NewOutgoing,
    OutgoingState,
    Receipt,
    Settled,
)

SENDER = "000.00.00.H58"


@pytest.fixture
def store(tmp_path: Path):
    opened = GatewayStore(tmp_path)
    yield opened
    opened.close()


def outgoing_in(store: GatewayStore, state: OutgoingState, name: str) -> str:
    """A queued message brought to ``state`` by the moves the daemon makes."""
    message = NewOutgoing("edoc", f"{SENDER},2026/12/03,{name}", "Văn bản", ("000.00.11.H58",))
    assert store.outgoing.queue(name, message, source_key=f"test:{name}", deadline_seconds=3600) is not None
    if state is OutgoingState.SENT:
        store.outgoing.mark_sent(name, f"axis-{name}")
    elif state in (OutgoingState.FAILED, OutgoingState.ABANDONED):
        store.outgoing.fail(name, "deadline passed")
    if state is OutgoingState.ABANDONED:
        store.outgoing.abandon(name, by="admin", reason="sent to the wrong agency")
    assert outgoing_state(store, name) == state
    return name


def outgoing_state(store: GatewayStore, outgoing_id: str) -> str:
    return store.db.execute("SELECT state FROM outgoing WHERE id = ?", (outgoing_id,)).fetchone()[0]


def move_outgoing(store: GatewayStore, outgoing_id: str, target: OutgoingState) -> None:
    if target is OutgoingState.SENT:
        store.outgoing.mark_sent(outgoing_id, "axis-again")
    elif target is OutgoingState.FAILED:
        store.outgoing.fail(outgoing_id, "refused")
    elif target is OutgoingState.ABANDONED:
        if not store.outgoing.abandon(outgoing_id, by="admin", reason="given up"):
            store.outgoing._move(store.db, outgoing_id, target, "abandon_reason = NULL", ())
    else:
        store.outgoing.requeue(f"{SENDER},2026/12/03,{outgoing_id}", 3600) or store.outgoing._move(
            store.db, outgoing_id, target, "last_error = NULL", ()
        )


@pytest.mark.parametrize(("source", "target"), list(itertools.product(OutgoingState, OutgoingState)))
def test_every_outgoing_move(store, source, target):
    outgoing_id = outgoing_in(store, source, f"{source}-{target}")
    if target in OUTGOING_MOVES[source]:
        move_outgoing(store, outgoing_id, target)
        assert outgoing_state(store, outgoing_id) == target
    else:
        with pytest.raises(IllegalTransition) as caught:
            move_outgoing(store, outgoing_id, target)
        assert caught.value.code == "DB701" and f"is {source}; it cannot become {target}" in caught.value.message
        assert outgoing_state(store, outgoing_id) == source


def incoming_in(store: GatewayStore, state: IncomingState, name: str) -> str:
    assert store.incoming.note_listed(name, "edoc", SENDER)
    if state is not IncomingState.LISTED:
        store.incoming.settle(name, Settled(state, from_code=SENDER, document_id=name))
    return name


def incoming_state(store: GatewayStore, axis_doc_id: str) -> str:
    return store.db.execute("SELECT state FROM incoming WHERE axis_doc_id = ?", (axis_doc_id,)).fetchone()[0]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(IncomingState, IncomingState)))
def test_every_incoming_move(store, source, target):
    axis_doc_id = incoming_in(store, source, f"{source}-{target}")
    if target in INCOMING_MOVES[source]:
        store.incoming.settle(axis_doc_id, Settled(target, from_code=SENDER, document_id="changed"))
        assert incoming_state(store, axis_doc_id) == target
    else:
        with pytest.raises(IllegalTransition, match=f"is {source}; it cannot become {target}"):
            store.incoming.settle(axis_doc_id, Settled(target, from_code=SENDER, document_id="changed"))
        assert incoming_state(store, axis_doc_id) == source


def test_a_refused_move_takes_its_whole_transaction_back(store):
    """A status recorded twice: the second receipt is not added beside the refused move, and a
    01 queued for an incoming message already settled is not queued either."""
    sent = outgoing_in(store, OutgoingState.SENT, "ours")
    incoming_in(store, IncomingState.LISTED, "status-1")
    receipt = Receipt(sent, "000.00.11.H58", "03", None, None, 0.0, "status-1")
    recorded = Settled(IncomingState.RECORDED, from_code="000.00.11.H58", document_id=sent, status_code="03")
    store.incoming.settle("status-1", recorded, receipt=receipt)
    with pytest.raises(IllegalTransition):
        later = Receipt(sent, "000.00.11.H58", "04", None, None, 0.0, "status-1b")
        store.incoming.settle("status-1", recorded, receipt=later)
    assert [r.status_code for r in store.outgoing.receipts_for(sent)] == ["03"]
    reply = NewOutgoing("status", "x", "Đã đến", (SENDER,), status_code="01")
    settling = ("status-1", Settled(IncomingState.DELIVERED, from_code=SENDER))
    with pytest.raises(IllegalTransition):
        store.outgoing.queue("reply", reply, source_key="auto:status-1:01", deadline_seconds=60, settling=settling)
    assert store.outgoing.by_source("auto:status-1:01") is None


def test_a_message_that_does_not_exist_cannot_move(store):
    with pytest.raises(IllegalTransition, match="does not exist"):
        store.outgoing.mark_sent("nobody", "axis-1")
    with pytest.raises(IllegalTransition, match="does not exist"):
        store.incoming.settle("nobody", Settled(IncomingState.DELIVERED, from_code=SENDER))
