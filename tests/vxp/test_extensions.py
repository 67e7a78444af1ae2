"""Our axis's extensions as a client reads their announcements: numbers in range or nothing,
and never more docIds than fit the headers of one call, whatever an axis announces."""

from __future__ import annotations

import pybase64

from gateway.vxp.extensions import (
    DIRECTORY_DIGEST_HEADER,
    INLINE_HEADER,
    LONG_POLL_HEADER,
    MOST_DOC_IDS,
    MOST_MESSAGES,
    SEND_BATCH_HEADER,
    SEND_BODY_MAX_BYTES,
    SEND_MESSAGE_MAX_BYTES,
    SEND_TO_MAX_CHARACTERS,
    STATUS_BATCH_HEADER,
    Announced,
    Sendable,
    announced,
    answered_digest,
    carried_message,
    directory_digest,
    fits_a_batch,
    plan_sends,
    send_batch_params,
)
from gateway.vxp.protocol import signed_headers


def test_an_answer_without_announcements_announces_nothing():
    assert announced({}) == Announced(None, None, None)


def test_announcements_are_read_as_numbers_in_their_range():
    headers = {LONG_POLL_HEADER: "30", INLINE_HEADER: "65536", STATUS_BATCH_HEADER: "50"}
    assert announced(headers) == Announced(30.0, 65536, 50)


def test_a_garbled_or_out_of_range_announcement_is_none():
    for bad in ("", "soon", "-1", "0", "nan", "1e9", "99999999"):
        headers = {LONG_POLL_HEADER: bad, INLINE_HEADER: bad, STATUS_BATCH_HEADER: bad}
        assert announced(headers) == Announced(None, None, None), bad


def test_the_docids_of_one_call_stay_within_what_its_headers_hold():
    assert announced({STATUS_BATCH_HEADER: "5000"}).status_batch_max == MOST_DOC_IDS


def test_a_carried_message_that_is_not_base64_is_fetched_instead():
    assert carried_message(pybase64.b64encode(b"<edXML/>").decode()) == b"<edXML/>"
    for bad in (None, 12, "not base64!", "QUJD=", ["QUJD"]):
        assert carried_message(bad) is None, bad


def test_the_directory_digest_is_announced_by_exactly_one():
    assert announced({DIRECTORY_DIGEST_HEADER: "1"}).directory_digest
    assert not announced({DIRECTORY_DIGEST_HEADER: "yes"}).directory_digest and not announced({}).directory_digest


def test_only_a_digest_of_our_form_is_taken_from_a_directory_answer():
    digest = directory_digest(b"[]")
    assert answered_digest({"digest": digest}) == digest and len(digest) == 32
    for foreign in ({}, {"digest": None}, {"digest": 7}, {"digest": digest.upper()}, {"digest": digest + "0"}):
        assert answered_digest(foreign) is None, foreign


def test_several_messages_per_send_are_taken_only_as_announced_and_within_bounds():
    assert announced({SEND_BATCH_HEADER: "25"}).send_batch_max == 25
    assert announced({SEND_BATCH_HEADER: "5000"}).send_batch_max == MOST_MESSAGES
    for bad in ("1", "0", "-3", "many", ""):  # one message a call is no batch
        assert announced({SEND_BATCH_HEADER: bad}).send_batch_max is None, bad
    assert announced({}).send_batch_max is None


def test_a_round_is_planned_in_queue_order_within_count_bytes_type_and_recipients():
    plan = plan_sends
    assert plan([], 40) == []
    assert plan([Sendable(10)] * 5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    # 1 MiB together at most: 20 messages of 60 KiB are two calls
    sizes = [Sendable(60 * 1024)] * 20
    calls = plan(sizes, MOST_MESSAGES)
    assert [index for call in calls for index in call] == list(range(20)) and len(calls) == 2
    assert all(sum(sizes[i].size or 0 for i in call) <= SEND_BODY_MAX_BYTES for call in calls)
    # a message too large for a batch goes alone in its place: nothing overtakes what came before
    large = Sendable(SEND_MESSAGE_MAX_BYTES + 1)
    assert plan([Sendable(10), Sendable(10), large, Sendable(10), Sendable(None), Sendable(10), Sendable(10)], 40) == [
        range(0, 2),
        range(2, 3),
        range(3, 4),
        range(4, 5),
        range(5, 7),
    ]
    # one message type a call
    assert plan([Sendable(10, "edoc"), Sendable(10, "edoc"), Sendable(10, "status")], 40) == [range(0, 2), range(2, 3)]
    # the recipients each names (a relay's `to`) fit the call's header
    many = [Sendable(10, "edoc", [f"000.00.{n:02}.H58" for n in range(8)])] * 40
    calls = plan(many, 40)
    assert len(calls) > 1 and all(len(call) > 1 for call in calls[:-1])
    assert all(
        len(send_batch_params([b"x"] * len(call), [many[i].to for i in call])["to-each"]) <= SEND_TO_MAX_CHARACTERS
        for call in calls
    )
    assert not fits_a_batch(0) and fits_a_batch(SEND_MESSAGE_MAX_BYTES)


def test_the_largest_call_a_plan_makes_fits_the_headers_aiohttp_reads():
    """40 messages, each naming recipients up to the plan's bound: every header line of the
    signed request stays under aiohttp's 8,190 bytes."""
    codes = [f"000.00.{n:02}.H58" for n in range(30)]
    messages = [Sendable(1000, "edoc", codes[: 1 + n % 3]) for n in range(200)]
    for call in plan_sends(messages, MOST_MESSAGES):
        params = {"servicetype": "eDoc", "messagetype": "edoc", "from": "000.00.00.H58"}
        params.update(send_batch_params([bytes([n % 256]) * 1000 for n in call], [messages[n].to for n in call]))
        headers = signed_headers(params, system_id="sys-tiengiang-axis", secret="s" * 40, content_type="x")
        assert max(len(name) + len(value) + 2 for name, value in headers) < 8190
