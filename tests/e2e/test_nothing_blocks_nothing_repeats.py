"""One odd message blocks nothing behind it, and nothing is taken or delivered twice: an odd
DocumentId, a vanished signed file, copies of one document, a resend, leftovers of a crash."""

from __future__ import annotations

import os
import time

from gateway.daemon.outgoing import KEPT_IN_DATABASE_BYTES
from gateway.store import Outgoing, OutgoingState
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import send_directly, signed_by, to, wait_until
from tests.messages import full_document

MINISTRY, PROVINCE, DEPARTMENT = "000.00.00.G22", "000.00.00.H58", "000.00.11.H58"


def test_a_document_our_strict_schema_would_not_emit_is_still_answered_and_blocks_nothing(province):
    """D1: a DocumentId longer than we would write made signing the 01 fail, forever, first in the queue."""
    province.start(DEPARTMENT)
    long_id = f"{MINISTRY},2026/11/25," + "7" * 230 + "/VPCP"
    odd = to(full_document(sender=MINISTRY), DEPARTMENT, document_id=long_id)
    send_directly(province, MINISTRY, signed_by(province, MINISTRY, odd))
    normal = to(full_document(sender=MINISTRY), DEPARTMENT, document_id=f"{MINISTRY},2026/11/25,8/VPCP")
    send_directly(province, MINISTRY, signed_by(province, MINISTRY, normal))
    delivered = wait_until(
        lambda: len(province.agencies[DEPARTMENT].delivered()) == 2 and province.agencies[DEPARTMENT].delivered(),
        "both documents",
    )
    assert {d["document_id"] for d in delivered} == {long_id, normal.document_id}

    def arrivals_sent() -> int:
        with province.agencies[DEPARTMENT].store() as store:
            statuses = store.reports.outgoing_for_kind(MessageType.STATUS)
        return sum(1 for s in statuses if s.status_code == "01" and s.state is OutgoingState.SENT)

    wait_until(lambda: arrivals_sent() == 2, "both 01 sent")
    assert "worker_error" not in province.agencies[DEPARTMENT].service.event_names()


def test_the_same_document_from_two_axis_copies_lands_in_one_folder(province):
    """D3: copies of one (sender, DocumentId) under different axis docIds map to one inbox folder."""
    from gateway.daemon import inbox

    a = inbox.folder_name(MINISTRY, "000.00.00.G22,2026/11/25,1/VPCP", "axis-copy-a")
    b = inbox.folder_name(MINISTRY, "000.00.00.G22,2026/11/25,1/VPCP", "axis-copy-b")
    other = inbox.folder_name(MINISTRY, "000.00.00.G22,2026/11/25,1-VPCP", "axis-copy-c")
    assert a == b and a != other
    assert "/" not in a and a.startswith("000.00.00.G22_2026-11-25_1-VPCP-")
    assert inbox.folder_name(MINISTRY, None, "axis-copy-a") == "axis-copy-a"


def test_a_resent_document_without_document_id_is_accepted_once(province):
    """D5: the axis keyed such documents on the relayed bytes, which carry its own fresh TraceHeader."""
    province.start(DEPARTMENT)
    anonymous = signed_by(province, MINISTRY, to(full_document(sender=MINISTRY), DEPARTMENT, document_id=None))
    first = send_directly(province, MINISTRY, anonymous)
    time.sleep(1.2)  # the axis's TraceHeader has whole seconds
    assert send_directly(province, MINISTRY, anonymous) == first
    wait_until(lambda: province.agencies[DEPARTMENT].delivered(), "the document")
    time.sleep(1.0)
    assert len(province.agencies[DEPARTMENT].delivered()) == 1


def test_a_queued_message_whose_file_vanished_fails_alone(province):
    """D6: reading the signed file outside the error handling stopped every push behind it. A
    file is a large message's (a small one is kept in the database): the first is large."""
    agency = province.start(PROVINCE)
    agency.service.stop()
    for name, size in (("first", 2 * KEPT_IN_DATABASE_BYTES), ("second", 10)):
        scan = {"scan.pdf": os.urandom(size)}
        province.drop_job(PROVINCE, name, {"to": [DEPARTMENT], "subject": f"Văn bản {name}"}, scan)
    province.start(PROVINCE)
    wait_until(lambda: not [p for p in agency.outbox.iterdir() if p.name != "failed"], "intake of both")
    agency.service.stop()
    with agency.raw_db() as db:  # both back in the queue, as if the axis had not been reached yet
        db.execute("UPDATE outgoing SET state = 'queued', next_attempt_at = 0 WHERE kind = 'edoc'")
        db.commit()

    def by_subject(subject: str) -> Outgoing:
        with agency.store() as store:
            (item,) = [o for o in store.reports.outgoing_for_kind(MessageType.EDOC) if o.subject == subject]
        return item

    first_file = by_subject("Văn bản first").file
    os.unlink(agency.folder / "var" / "outgoing" / first_file)
    province.start(DEPARTMENT)
    province.start(PROVINCE)
    wait_until(
        lambda: [d for d in province.agencies[DEPARTMENT].delivered() if d["subject"] == "Văn bản second"],
        "the second document",
    )

    def first_outcome() -> Outgoing | None:
        first = by_subject("Văn bản first")
        return first if first.state is not OutgoingState.QUEUED else None

    first = wait_until(first_outcome, "the first message to be settled")
    assert first.state is OutgoingState.FAILED and "cannot be read" in (first.last_error or "")
    # and the one queued behind it went out (again: the axis answers a resend)
    wait_until(
        lambda: by_subject("Văn bản second").state is OutgoingState.SENT,
        "the second message sent after the failed first",
    )


def test_leftovers_of_a_crash_are_cleared_at_start_and_a_delivery_being_written_never_is(province):
    """D2: a job folder half deleted by a crash was taken again, under a new DocumentId. And
    housekeeping removed inbox/.tmp-ID while a delivery was writing it: its rename then moved a
    folder whose files the removal went on deleting, so a delivered document's folder was empty
    (found by bench/quarter.py, where a clock step ran housekeeping beside a delivery)."""
    agency = province.agencies[PROVINCE]
    leftover = agency.outbox / ".taken-job-7"
    leftover.mkdir(parents=True)
    (leftover / "b.txt").write_text("half of a job")
    half_written = agency.inbox / ".tmp-crashed"
    half_written.mkdir(parents=True)
    (half_written / "envelope.edxml").write_bytes(b"<half/>")
    agency.config.write_text(agency.config.read_text().replace("housekeeping = 30.0", "housekeeping = 0.5"))
    province.start(PROVINCE)
    wait_until(lambda: not leftover.exists() and not half_written.exists(), "the crash's leftovers to be cleared")
    for event in ("inbox_leftovers_removed", "intake_tidied"):
        said = agency.service.wait_for(lambda e, event=event: e.get("event") == event, event)
        assert said["removed"] == 1, said
    # While it runs: a delivery being written, and an hour-old outgoing file no row names, which
    # housekeeping removes: once it has, it has been past the delivery's folder too.
    being_written = agency.inbox / ".tmp-being-written"
    being_written.mkdir()
    (being_written / "envelope.edxml").write_bytes(b"<signed/>")
    orphan = agency.database.parent / "outgoing" / "orphan.edxml"
    orphan.write_bytes(b"<never committed/>")
    an_hour_ago = time.time() - 7200
    os.utime(orphan, (an_hour_ago, an_hour_ago))
    wait_until(lambda: not orphan.exists(), "housekeeping to remove the orphaned outgoing file")
    assert (being_written / "envelope.edxml").read_bytes() == b"<signed/>"
    with agency.store() as store:
        assert store.outgoing.known_files() == set()
