"""What the quarterly report counts of our answers: each document once, and nothing given up
(found in review: a 06 said again after the first was abandoned made two finished documents,
and an abandoned 02 counted as a refusal)."""

from __future__ import annotations

from pathlib import Path

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
