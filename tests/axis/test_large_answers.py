"""getEdoc answers of any size: the base64 payload is taken out of the JSON as bytes, and
anything unusual falls back to the JSON parser, with the same result."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest

from gateway import edxml
from gateway.axis.server import STREAM_FROM_BYTES
from gateway.axis_client import (
    DEFAULT_MAX_ANSWER_BYTES,
    PAYLOAD_SPLIT_BYTES,
    AxisClient,
    PayloadReader,
    answer_limit,
    split_payload,
)
from gateway.errors import AxisError
from tests.axis.test_axis import DEPARTMENT, MINISTRY, client, run, send
from tests.conftest import full_document

PAYLOAD = base64.b64encode(os.urandom(PAYLOAD_SPLIT_BYTES)).decode("ascii")


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


@pytest.mark.parametrize("from_file", [False, True], ids=["bytes", "file"])
def test_a_large_document_fetched_through_the_axis_is_the_one_sent(axis, tmp_path, from_file):
    """Above STREAM_FROM_BYTES the axis answers getEdoc in pieces (its Content-Length still
    announced) and the client decodes them as they come; a file is sent from the disk."""
    base = full_document(sender=MINISTRY)
    scan = edxml.Attachment("scan", "scan.pdf", os.urandom(STREAM_FROM_BYTES), "application/pdf")
    recipient = dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(DEPARTMENT))
    data = edxml.build(dataclasses.replace(base, to=(recipient,), business=None, attachments=(scan,)))
    (tmp_path / "signed.edxml").write_bytes(data)
    run(send(axis, "sys-g22", tmp_path / "signed.edxml" if from_file else data, MINISTRY))

    async def fetch() -> bytes:
        async with client(axis, "sys-h58") as c:
            (item,) = await c.received_list()
            return await c.get_edoc(item.doc_id)

    fetched = run(fetch())
    assert isinstance(fetched, bytearray)  # decoded in pieces, into one buffer
    assert edxml.read(fetched).attachments[0].data == scan.data


MESSAGE = os.urandom(300 * 1024 + 2)  # not a multiple of 3: the base64 ends in padding


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
        ('{"status":"OK","data":"' + PAYLOAD, "ends inside"),
    ],
)
def test_a_payload_that_is_not_base64_is_refused_with_the_reason(body, reason):
    reader = PayloadReader()
    with pytest.raises(ValueError, match=reason):
        for start in range(0, len(body), 1000):
            reader.feed(body[start : start + 1000].encode())
        reader.finish()


def test_an_answer_without_data_near_its_start_is_left_to_the_json_parser():
    error = json.dumps({"status": "FAIL", "ErrorCode": "13", "ErrorDesc": "x" * 100_000}).encode()
    reader = PayloadReader()
    reader.feed(error)
    assert reader.finish() == (error, None)


async def answered_by(handler, call, **client_options):
    """``call(client)`` against a one-route aiohttp server on 127.0.0.1 that answers with ``handler``."""
    from aiohttp import web

    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with AxisClient(f"http://127.0.0.1:{port}", "sys-x", "secret", timeout=10, **client_options) as c:
            return await call(c)
    finally:
        await runner.cleanup()


def test_a_nested_data_key_before_the_real_one_is_read_as_json():
    """A "data" key inside another object comes first: the answer is read whole, not cut there."""
    from aiohttp import web

    answer = {"status": "OK", "ErrorCode": "0", "meta": {"data": PAYLOAD}, "data": "not the payload"}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer)

    assert split_payload(json.dumps(answer).encode())[1] is not None  # the cut does happen
    got = run(answered_by(handler, lambda c: c.call("getEdoc", {"docId": "1"})))
    assert got["data"] == "not the payload" and got["meta"]["data"] == PAYLOAD


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_an_answer_larger_than_the_limit_is_refused_not_read(announced):
    """A broken or hostile axis answering getEdoc with more than the largest message allowed:
    AxisError naming the limit (the fetch is postponed), never the whole answer in memory."""
    from aiohttp import web

    message = os.urandom(200 * 1024)
    body = json.dumps({"status": "OK", "ErrorCode": "0", "data": base64.b64encode(message).decode()}).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        if announced:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 32 * 1024):
            await response.write(body[start : start + 32 * 1024])
        await response.write_eof()
        return response

    limit = 100 * 1024
    assert len(body) > limit
    with pytest.raises(AxisError, match=f"larger than {limit} bytes"):
        run(answered_by(handler, lambda c: c.get_edoc("1"), max_answer_bytes=limit))
    small = run(answered_by(handler, lambda c: c.get_edoc("1"), max_answer_bytes=len(body)))
    assert small == message


def test_the_gateway_reads_answers_up_to_its_largest_message():
    assert answer_limit(160 * 1024 * 1024) == DEFAULT_MAX_ANSWER_BYTES
    assert answer_limit(3) == 4 + 1024 * 1024
