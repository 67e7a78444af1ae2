"""What an axis says about a delivery is its word, not ours: a docId, a created_time, the
sender it names. None of it may name a path, stop the deliveries behind it, or have our
refusal told to an agency the file only claims to be (found in a review, each failed before)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from gateway import edxml
from gateway.daemon import compose, inbox
from gateway.daemon.examine import Receiver, examine
from gateway.errors import AxisError
from gateway.store import GatewayStore, NewOutgoing, OutgoingState
from gateway.vxp.protocol import accepted_moment, accepted_time, doc_id_problem
from tests.axis.test_large_answers import answered_by
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, organization

TRAVERSAL = "x/../../../victim"


@pytest.mark.parametrize("value", ["9fbfbad2-5c3a-4d0e-9d52-1f7f2b9c0a11", "12345", 12345, "A" * 128, "a.b:c@d"])
def test_a_docid_an_axis_can_mean_is_taken(value):
    assert doc_id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (TRAVERSAL, "would name a path"),
        ("..", "would name a path"),
        (".tmp-1", "would name a path"),
        ("a\\b", "would name a path"),
        ("é", "printable ASCII"),
        ("a b", "printable ASCII"),
        ("a\nb", "printable ASCII"),
        ("", "printable ASCII"),
        ("A" * 129, "printable ASCII"),
        (None, "missing"),
        ({"id": 1}, "dict"),
        (True, "bool"),
    ],
)
def test_a_docid_no_request_or_file_can_carry_is_named_as_such(value, named):
    assert named in doc_id_problem(value)


def test_a_list_leaves_out_the_items_whose_docid_cannot_be_used_and_says_why():
    items = [
        {"docId": TRAVERSAL, "from": MINISTRY, "to": DEPARTMENT, "messageType": "edoc"},
        {"docId": None, "from": MINISTRY, "to": DEPARTMENT, "messageType": "edoc"},
        {"docId": "é", "from": MINISTRY, "to": DEPARTMENT, "messageType": "edoc"},
        {"docId": "good-1", "from": MINISTRY, "to": DEPARTMENT, "messageType": "edoc", "created_time": "x"},
    ]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"status": "OK", "ErrorCode": "0", "data": items}))

    listed = asyncio.run(answered_by(handler, lambda c: c.received_list()))
    assert [item.doc_id for item in listed] == ["good-1"]
    assert len(listed.unusable) == 3
    assert "would name a path" in listed.unusable[0] and "missing" in listed.unusable[1]


def test_a_docid_sendedoc_answers_that_cannot_be_used_is_not_taken_for_the_message():
    """Found in review: the DocId sendEdoc answered was kept as our record's axis docId
    unchecked, where a listed one is checked; a batch's results the same."""

    async def handler(request: web.Request) -> web.Response:
        answer = {"status": "OK", "ErrorCode": "0", "DocId": TRAVERSAL}
        if any(name.lower().endswith("hash-files") for name in request.headers):  # two messages in one call
            answer["results"] = [{"DocId": TRAVERSAL}, {"DocId": "good-2"}]
        return web.Response(
            text=json.dumps(answer), headers={"X-Send-Max-Messages": "40"}, content_type="application/json"
        )

    async def send_one(client):
        return await client.send_edoc(b"<x/>", message_type="edoc", from_code=MINISTRY)

    with pytest.raises(AxisError, match=r"sendEdoc: the answer's docId .* would name a path"):
        asyncio.run(answered_by(handler, send_one))

    async def send_two(client):
        with pytest.raises(AxisError):  # the first answer teaches the client the batch extension
            await send_one(client)
        return await client.send_many([b"<a/>", b"<b/>"], message_type="status", from_code=MINISTRY)

    first, second = asyncio.run(answered_by(handler, send_two))
    assert isinstance(first, AxisError) and "would name a path" in str(first) and second == "good-2"


def test_a_docid_no_request_can_carry_is_a_refused_call_not_a_crash():
    async def handler(request: web.Request) -> web.Response:
        raise AssertionError("nothing may be sent")

    with pytest.raises(AxisError, match="getEdoc: parameter 'docId' must be ASCII"):
        asyncio.run(answered_by(handler, lambda c: c.get_edoc("é")))


def test_a_refused_message_under_a_docid_naming_a_path_stays_in_rejected(tmp_path: Path):
    box = tmp_path / "data" / "inbox"
    box.mkdir(parents=True)
    victim = tmp_path / "data" / "victim"  # what the docId points at, from .rejected/.tmp-x
    victim.mkdir()
    (victim / "kept.txt").write_text("records")
    folder = inbox.reject(box, TRAVERSAL, b"<junk/>", "not XML", {"axis_doc_id": TRAVERSAL})
    assert folder.parent == box / ".rejected" and (folder / "reason.txt").read_text() == "not XML\n"
    assert (victim / "kept.txt").read_text() == "records"
    assert sorted(p.name for p in tmp_path.joinpath("data").iterdir()) == ["inbox", "victim"]
    # made safe alike, told apart: two docIds never share a folder
    other = inbox.reject(box, "x/../../../victim/", b"<junk/>", "not XML", {})
    assert other != folder and other.parent == folder.parent
    assert inbox.axis_name("9fbfbad2-5c3a") == "9fbfbad2-5c3a"  # a docId that is a file name stays itself


def test_a_recall_event_under_a_docid_naming_a_path_stays_in_its_folder(tmp_path: Path):
    delivered = tmp_path / "inbox" / "document-1"
    delivered.mkdir(parents=True)
    path = inbox.add_event(tmp_path / "inbox", "document-1", f"{inbox.axis_name('../../escape')}-13", {"a": 1})
    assert path is not None and path.parent == delivered / "events" and path.name.endswith("-13.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inbox"]


@pytest.mark.parametrize("created", ["0001/01/01 00:00:00", "1969/12/31 23:00:00", "not a time", ""])
def test_a_created_time_no_axis_can_mean_is_no_time_at_all(created):
    assert accepted_time(created) is None


def test_a_kept_acceptance_time_out_of_range_is_judged_as_now(document, pki):
    assert accepted_moment(-62135622000.0) is None  # what 0001/01/01 in Vietnam was read as before
    assert accepted_moment(1e20) is not None  # ahead of our clock: now
    verdict = examine(
        document, listed_from=PROVINCE, listed_as="edoc", receiver=Receiver(DEPARTMENT, pki.trust), accepted_at=-6e10
    )
    assert verdict.refusal is None and verdict.signature.valid


@pytest.fixture(scope="module")
def document(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))


def test_a_refusal_goes_to_the_sender_the_axis_named_not_the_one_the_file_claims():
    me = organization(DEPARTMENT, "Sở Nội vụ")
    claimed = full_document(sender=PROVINCE)  # the file says the province; the axis says the ministry
    refusal = compose.refusal(claimed, sender=me, listed_from=MINISTRY, axis_doc_id="axis-7", reason="SIG208")
    assert refusal.response_for.organ_id.text == MINISTRY and refusal.response_for.document_id == "axis-7"
    assert refusal.status_code is edxml.StatusCode.REFUSED and refusal.description == "SIG208"
    own = compose.refusal(claimed, sender=me, listed_from=PROVINCE, axis_doc_id="axis-8", reason="SIG202")
    assert own.response_for.organ_id.text == PROVINCE and own.response_for.document_id == claimed.document_id
    unreadable = compose.refusal(None, sender=me, listed_from=MINISTRY, axis_doc_id="axis-9", reason="EDX101")
    assert unreadable.response_for.organ_id.text == MINISTRY and unreadable.response_for.document_id == "axis-9"


def test_receipts_of_a_document_queued_again_after_its_abandonment_reach_the_new_one(tmp_path: Path):
    store = GatewayStore(tmp_path)
    try:
        document_id = f"{PROVINCE},2026/12/07,5/UBND"
        message = NewOutgoing("edoc", document_id, "Văn bản", (DEPARTMENT,))
        store.outgoing.queue("first", message, source_key="test:first", deadline_seconds=3600)
        store.outgoing.fail("first", "deadline passed")
        assert store.outgoing.abandon("first", by="admin", reason="wrong recipient")
        again = NewOutgoing("edoc", document_id, "Văn bản", (MINISTRY,))
        store.outgoing.queue("second", again, source_key="test:second", deadline_seconds=3600)
        found = store.outgoing.sent_document(document_id)
        assert found is not None and found.id == "second" and found.state is OutgoingState.QUEUED
    finally:
        store.close()


def test_an_inbox_folder_found_for_another_document_is_not_taken_for_its_delivery(tmp_path: Path, pki):
    """Folder names end in a 40-bit digest of (sender, DocumentId): a sender who searched for a
    name another sender's next document will get must not have that one taken for delivered."""
    from gateway.errors import DeliveryError

    first = edxml.validate(edxml.sign_message(full_document(), pki.identity(PROVINCE)), trust=pki.trust)
    name = inbox.folder_name(PROVINCE, first.message.document_id, "axis-1")
    folder = inbox.deliver(tmp_path, name, b"<x/>", first.message, axis_doc_id="axis-1", signature=first.signature)
    again = inbox.deliver(tmp_path, name, b"<x/>", first.message, axis_doc_id="axis-2", signature=first.signature)
    assert again == folder  # the same document once more: its earlier delivery
    claimed = edxml.sign_message(full_document(sender=MINISTRY), pki.identity(MINISTRY))
    other = edxml.validate(claimed, trust=pki.trust)
    with pytest.raises(DeliveryError, match=f"holds another document \\(from {PROVINCE}"):
        inbox.deliver(tmp_path, name, b"<y/>", other.message, axis_doc_id="axis-3", signature=other.signature)
    assert (folder / "envelope.edxml").read_bytes() == b"<x/>"
