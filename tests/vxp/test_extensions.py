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
    STATUS_BATCH_HEADER,
    Announced,
    announced,
    answered_digest,
    carried_message,
    directory_digest,
    fits_a_batch,
    send_batches,
)


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


def test_send_batches_keep_order_and_stay_within_count_and_bytes():
    assert send_batches([], 40) == []
    assert send_batches([10] * 5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    # 1 MiB together at most: 20 messages of 60 KiB are two calls
    sizes = [60 * 1024] * 20
    runs = send_batches(sizes, MOST_MESSAGES)
    assert [index for run in runs for index in run] == list(range(20))
    assert all(sum(sizes[i] for i in run) <= SEND_BODY_MAX_BYTES for run in runs) and len(runs) == 2
    assert fits_a_batch(SEND_MESSAGE_MAX_BYTES) and not fits_a_batch(SEND_MESSAGE_MAX_BYTES + 1)
    assert not fits_a_batch(0)
