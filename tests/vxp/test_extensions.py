"""Our axis's extensions as a client reads their announcements: numbers in range or nothing,
and never more docIds than fit the headers of one call, whatever an axis announces."""

from __future__ import annotations

import pybase64

from gateway.vxp.extensions import (
    DIRECTORY_DIGEST_HEADER,
    INLINE_HEADER,
    LONG_POLL_HEADER,
    MOST_DOC_IDS,
    STATUS_BATCH_HEADER,
    Announced,
    announced,
    answered_digest,
    carried_message,
    directory_digest,
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
