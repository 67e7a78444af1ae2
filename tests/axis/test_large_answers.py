"""getEdoc answers of any size: the base64 payload is taken out of the JSON as bytes, and
anything unusual falls back to the JSON parser, with the same result."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest

from gateway import edxml
from gateway.axis_client import (
    DEFAULT_MAX_ANSWER_BYTES,
    PAYLOAD_SPLIT_BYTES,
    AxisClient,
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


def test_a_large_document_fetched_through_the_axis_is_the_one_sent(axis):
    base = full_document(sender=MINISTRY)
    scan = edxml.Attachment("scan", "scan.pdf", os.urandom(3 * 1024 * 1024), "application/pdf")
    recipient = dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(DEPARTMENT))
    data = edxml.build(dataclasses.replace(base, to=(recipient,), business=None, attachments=(scan,)))
    run(send(axis, "sys-g22", data, MINISTRY))

    async def fetch() -> bytes:
        async with client(axis, "sys-h58") as c:
            (item,) = await c.received_list()
            return await c.get_edoc(item.doc_id)

    fetched = edxml.read(run(fetch()))
    assert fetched.attachments[0].data == scan.data


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
