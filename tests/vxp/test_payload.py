"""getEdoc answers read as they arrive (sans-IO): the base64 payload is taken out of the JSON
as bytes, and anything unusual falls back to the JSON parser, with the same result."""

from __future__ import annotations

import base64
import json
import os
import re

import pytest

from gateway.vxp.payload import PAYLOAD_SPLIT_BYTES, PayloadReader, split_payload

PAYLOAD = base64.b64encode(os.urandom(PAYLOAD_SPLIT_BYTES)).decode("ascii")
MESSAGE = os.urandom(300 * 1024 + 2)  # not a multiple of 3: the base64 ends in padding


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"status": "OK", "ErrorCode": "0", "data": PAYLOAD}),  # spaces after the colons
        json.dumps({"data": PAYLOAD, "status": "OK"}, separators=(",", ":")),
        '{"status" : "OK",\n "data" :\t"' + PAYLOAD + '"}',
    ],
)
def test_the_payload_is_split_out_and_the_envelope_still_parses(body):
    envelope, payload = split_payload(body.encode())
    assert payload is not None and bytes(payload) == PAYLOAD.encode()
    assert json.loads(envelope)["data"] == "" and json.loads(envelope)["status"] == "OK"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"status": "OK", "data": PAYLOAD[:100]}),  # small: JSON as usual
        json.dumps({"status": "OK", "data": PAYLOAD.replace("A", "\\/", 1)}),  # an escape inside
        json.dumps({"status": "OK", "ErrorDesc": "data", "data": PAYLOAD}),  # "data" as a value first
        json.dumps({"status": "OK", "data": [PAYLOAD]}),  # not a string
    ],
)
def test_anything_unusual_is_left_to_the_json_parser(body):
    envelope, payload = split_payload(body.encode())
    assert payload is None and envelope == body.encode()


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"status": "OK", "ErrorCode": "0", "data": base64.b64encode(MESSAGE).decode()}),
        json.dumps({"data": base64.b64encode(MESSAGE).decode(), "status": "OK"}, separators=(",", ":")),
        # Java's JSON writers escape every "/" as "\/"
        '{"status":"OK","data" :\t"' + base64.b64encode(MESSAGE).decode().replace("/", "\\/") + '","ErrorDesc":""}',
    ],
    ids=["spaces", "data-first", "escaped-slashes"],
)
@pytest.mark.parametrize("piece", [1, 7, 4096, 1024 * 1024])
def test_the_payload_is_decoded_as_it_arrives_in_pieces_of_any_size(body, piece):
    raw = body.encode()
    reader = PayloadReader(len(raw) if piece > 1 else None)  # with and without Content-Length
    for start in range(0, len(raw), piece):
        reader.feed(raw[start : start + piece])
    envelope, decoded = reader.finish()
    assert decoded == MESSAGE
    assert json.loads(envelope)["data"] == "" and json.loads(envelope)["status"] == "OK"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"status":"OK","data":"' + PAYLOAD[:4000] + "\\n" + PAYLOAD[4000:] + '"}', "escape"),
        ('{"status":"OK","data":"' + PAYLOAD[:4001] + '"}', "left over"),
        ('{"status":"OK","data":"' + PAYLOAD[:4000] + "!!!!" + '"}', "base64"),
        # found in review: decoded piece by piece, padding in the middle passed when a piece ended there
        ('{"status":"OK","data":"QQ==' + PAYLOAD[:4000] + '"}', "after its padding|Non-base64"),
    ],
)
@pytest.mark.parametrize("piece", [4, 1000, 1024 * 1024])
def test_a_payload_that_is_not_base64_is_noted_with_the_reason(body, reason, piece):
    """Noted, not raised: the envelope is still read (it may refuse the caller), then the call fails."""
    reader = PayloadReader()
    raw = body.encode()
    if "padding" in reason and piece == 4:
        raw = raw.replace(b'"data":"', b'"data": "')  # so that a piece ends right after "QQ=="
    for start in range(0, len(raw), piece):
        reader.feed(raw[start : start + piece])
    envelope, _ = reader.finish()
    assert reader.problem is not None and re.search(reason, reader.problem)
    assert json.loads(envelope)["status"] == "OK"


def test_an_answer_that_ends_inside_its_data_is_refused():
    reader = PayloadReader()
    reader.feed(('{"status":"OK","data":"' + PAYLOAD).encode())
    with pytest.raises(ValueError, match="ends inside"):
        reader.finish()


def test_an_answer_without_data_near_its_start_is_left_to_the_json_parser():
    error = json.dumps({"status": "FAIL", "ErrorCode": "13", "ErrorDesc": "x" * 100_000}).encode()
    reader = PayloadReader()
    reader.feed(error)
    assert reader.finish() == (error, None)
