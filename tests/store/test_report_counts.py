"""What the quarterly report counts of our answers: each document once, and nothing given up
(found in review: a 06 said again after the first was abandoned made two finished documents,
and an abandoned 02 counted as a refusal)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gateway.edxml import VIETNAM
from gateway.report import Period, agency_report
from gateway.store import GatewayStore, IncomingState, NewOutgoing, Settled

US, SENDER = "000.00.11.H58", "000.00.00.G22"


def delivered(store: GatewayStore, axis_doc_id: str) -> None:
    assert store.incoming.note_listed(axis_doc_id, "edoc", SENDER, to_code=US)
    store.incoming.settle(
        axis_doc_id,
        Settled(
            IncomingState.DELIVERED,
            from_code=SENDER,
            document_id=f"{SENDER},{axis_doc_id}",
            document_time="2023-07-04T09:00:00",
        ),
    )


def answer(store: GatewayStore, outgoing_id: str, axis_doc_id: str, code: str, subject: str = "") -> str:
    status = NewOutgoing("status", f"{SENDER},{axis_doc_id}", subject, (SENDER,), status_code=code, answers=axis_doc_id)
    assert store.outgoing.queue(outgoing_id, status, source_key=f"test:{outgoing_id}", deadline_seconds=3600)
    return outgoing_id


def test_each_document_counts_once_and_nothing_abandoned_counts(tmp_path: Path):
    store = GatewayStore(tmp_path)
    try:
        for axis_doc_id in ("d-1", "d-2", "d-3"):
            delivered(store, axis_doc_id)
        store.outgoing.fail(answer(store, "06-a", "d-1", "06"), "deadline passed")
        assert store.outgoing.abandon("06-a", by="admin", reason="said again below")
        answer(store, "06-b", "d-1", "06")
        answer(store, "06-c", "d-2", "06")
        answer(store, "06-d", "d-2", "06")  # said twice, both standing: one document all the same
        store.outgoing.fail(answer(store, "02-a", "d-3", "02", "sai thẩm quyền"), "deadline passed")
        assert store.outgoing.abandon("02-a", by="admin", reason="given up")
        report = agency_report(store, [(US, "Sở Nội vụ")], Period.quarter("2023Q3"))
    finally:
        store.close()
    assert report.received == 3
    assert report.finished == 2
    assert sum(report.refused_by_us.values()) == 0


def refused_on_arrival(store: GatewayStore, axis_doc_id: str, accepted_at: float, reason: str) -> None:
    assert store.incoming.note_listed(axis_doc_id, "edoc", SENDER, accepted_at, to_code=US)
    store.incoming.settle(axis_doc_id, Settled(IncomingState.REJECTED, from_code=SENDER, reason=reason))


def test_documents_refused_on_arrival_count_as_refused_by_us_by_when_they_arrived(tmp_path: Path):
    """Found in review: only the clerks' 02s counted, so a document the gateway refused on
    arrival (a signature that does not verify) was missing from "refused by us" while its
    sender's report counted it under "refused by recipients". Such a document's own date may
    be unreadable: it counts in the quarter the axis accepted it."""
    in_q3 = datetime(2023, 8, 1, 9, tzinfo=VIETNAM).timestamp()
    in_q4 = datetime(2023, 10, 2, 9, tzinfo=VIETNAM).timestamp()
    store = GatewayStore(tmp_path)
    try:
        delivered(store, "d-1")
        answer(store, "02-clerk", "d-1", "02", "sai thẩm quyền")
        for axis_doc_id, when in (("r-1", in_q3), ("r-2", in_q3), ("r-3", in_q4)):
            refused_on_arrival(store, axis_doc_id, when, "SIG202 signature mismatch")
            answer(store, f"02-{axis_doc_id}", axis_doc_id, "02", "SIG202 signature mismatch")
        refused_on_arrival(store, "r-4", in_q3, "EDX104 schema")  # its 02 given up: not counted
        store.outgoing.fail(answer(store, "02-r-4", "r-4", "02", "EDX104 schema"), "deadline passed")
        assert store.outgoing.abandon("02-r-4", by="admin", reason="given up")
        report = agency_report(store, [(US, "Sở Nội vụ")], Period.quarter("2023Q3"))
    finally:
        store.close()
    assert report.received == 1
    assert dict(report.refused_by_us) == {"sai thẩm quyền": 1, "SIG202 signature mismatch": 2}
