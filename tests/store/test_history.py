"""What a gateway looks up for each message costs the same whatever its history holds.

A gateway keeps every quarter's rows. The lookups made for each answer (the delivered document
named, the statuses answered before, the recalls received) and for each received status (the
document it is about) once walked every row of one kind or state: 40-60 ms each with a quarter
of UBND tỉnh's history. Here the work SQLite does for each is counted in virtual-machine steps
(a progress handler called at every step), for a history and for one four times as large.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.history import PEER, RECEIVED, SENT, first_exchange, grow
from gateway.store import GatewayStore
from tests.sqlsteps import counted_steps


def steps(db: sqlite3.Connection, lookup: Callable[[], object]) -> int:
    counted, found = counted_steps(db, lookup)
    assert found, "the lookup must find what it looks for, or it proves nothing"
    return counted


LOOKUPS: dict[str, Callable[[GatewayStore], object]] = {
    "the delivered copy by inbox folder": lambda s: s.incoming.delivered_to("inbox-0"),
    "the delivered copy by DocumentId": lambda s: s.incoming.delivered_to(RECEIVED),
    "a received document however it ended": lambda s: s.incoming.received("inbox-0"),
    "the statuses answering a document": lambda s: s.reports.statuses_answering(["doc-0"]),
    "the recalls received of a document": lambda s: s.reports.recalls_received([RECEIVED]),
    "the senders of a DocumentId": lambda s: s.incoming.senders_of((RECEIVED,)),
    "the document a received status is about": lambda s: s.outgoing.sent_document(SENT),
}


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, int]]:
    store = GatewayStore(tmp_path_factory.mktemp("history"))
    first_exchange(store)
    counted: dict[str, dict[int, int]] = {name: {} for name in LOOKUPS}
    for size, copies in ((500, range(1, 500)), (2000, range(500, 2000))):
        grow(store, copies)
        for name, lookup in LOOKUPS.items():
            counted[name][size] = steps(store.db, lambda lookup=lookup: lookup(store))
    store.close()
    return counted


@pytest.mark.parametrize("name", LOOKUPS)
def test_a_per_message_lookup_does_not_grow_with_the_history(histories: dict[str, dict[int, int]], name: str):
    small, large = histories[name][500], histories[name][2000]
    # a walk through one kind's rows takes several steps a row: thousands here, growing 4-fold
    assert large <= small + 20, f"{name}: {small} steps with 500 exchanges kept, {large} with 2,000"
    assert large < 500, f"{name}: {large} steps"


def test_a_database_of_version_10_gains_the_indexes(tmp_path: Path):
    store = GatewayStore(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:  # as version 10 left it
        for index in ("incoming_about", "incoming_inbox", "outgoing_document", "outgoing_answers"):
            db.execute(f"DROP INDEX {index}")
        db.execute("CREATE INDEX incoming_document ON incoming(document_id) WHERE state = 'delivered'")
        db.execute('CREATE INDEX "idx_outgoing_document_id" ON "outgoing" ("document_id")')
        db.execute("PRAGMA user_version = 10")
    store = GatewayStore(tmp_path)
    indexes = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"incoming_about", "incoming_inbox", "outgoing_document", "outgoing_answers"} <= indexes
    assert not {"incoming_document", "idx_outgoing_document_id"} & indexes
    first_exchange(store)
    assert store.incoming.senders_of((RECEIVED,)) == {PEER}
