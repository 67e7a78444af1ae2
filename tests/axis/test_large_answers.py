"""getEdoc answers of any size, through a real axis and client: large documents, limits,
callers that leave, and the turn a large answer waits for."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest

from gateway import edxml
from gateway.axis.answering import STREAM_FROM_BYTES
from gateway.axis_client import AxisClient
from gateway.axis_reading import (
    DEFAULT_MAX_ANSWER_BYTES,
    LARGE_ANSWER_BYTES,
    LIST_ANSWER_MAX_BYTES,
    LIST_ANSWER_MAX_OBJECTS,
    answer_limit,
)
from gateway.errors import AxisError, AxisRefusesGateway, AxisUnavailable
from gateway.vxp.payload import PAYLOAD_SPLIT_BYTES, split_payload
from tests.axis.test_axis import DEPARTMENT, MINISTRY, client, run, send
from tests.messages import full_document

PAYLOAD = base64.b64encode(os.urandom(PAYLOAD_SPLIT_BYTES)).decode("ascii")


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


def test_an_answer_refusing_the_gateway_is_read_as_such_whatever_its_data():
    """Found in review: an error answer whose "data" is not base64 surfaced as "not base64",
    hiding ErrorCode 15 (our credentials refused), after which the workers must pause."""
    from aiohttp import web

    body = json.dumps({"status": "FAIL", "ErrorCode": "15", "ErrorDesc": "authentication", "data": "n/a"})

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    with pytest.raises(AxisRefusesGateway, match="ErrorCode 15"):
        run(answered_by(handler, lambda c: c.get_edoc("1")))


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


def test_an_answer_nested_past_the_json_parser_is_an_unusable_answer_not_a_crash():
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")

    with pytest.raises(AxisUnavailable, match="not JSON"):
        run(answered_by(handler, lambda c: c.count()))


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


def test_a_caller_leaving_in_the_middle_of_a_large_answer_is_a_warning_not_an_error(axis):
    """Found in review: after the headers of a streamed getEdoc are sent, a failure must not be
    answered with a second response; the axis closes the connection, says so, and goes on."""
    import aiohttp

    from gateway.vxp.protocol import signed_headers

    base = full_document(sender=MINISTRY)
    scan = edxml.Attachment("scan", "scan.pdf", os.urandom(2 * STREAM_FROM_BYTES), "application/pdf")
    recipient = dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(DEPARTMENT))
    run(send(axis, "sys-g22", edxml.build(dataclasses.replace(base, to=(recipient,), attachments=(scan,))), MINISTRY))

    async def leave_early() -> str:
        async with client(axis, "sys-h58") as c:
            (item,) = await c.received_list()
        headers = signed_headers(
            {"docId": item.doc_id}, system_id="sys-h58", secret=axis.secret("sys-h58"), content_type="application/json"
        )
        async with aiohttp.ClientSession() as session:
            response = await session.post(f"{axis.url}/getEdoc", headers=headers)
            await response.content.read(64 * 1024)
            response.close()  # gone, with megabytes still to come
        return item.doc_id

    doc_id = run(leave_early())
    axis.service.wait_for(lambda e: e.get("event") == "delivery_fetch_interrupted", "the interruption to be told")

    async def fetch() -> bytes:
        async with client(axis, "sys-h58") as c:
            return await c.get_edoc(doc_id)

    assert edxml.read(run(fetch())).attachments[0].data == scan.data  # and the axis goes on
    assert "internal_error" not in axis.service.event_names()


def test_the_caller_is_asked_before_a_large_answer_is_read():
    """The hook a gateway uses to keep one large message in memory at a time: awaited once the
    answer announces LARGE_ANSWER_BYTES or more, before its body is read; never for a small one."""
    from aiohttp import web

    asked: list[int] = []

    async def fetch_with_hook(c: AxisClient) -> bytes:
        async def turn() -> None:
            asked.append(1)

        return await c.get_edoc("1", before_large=turn)

    for message, expected in ((os.urandom(LARGE_ANSWER_BYTES * 3 // 4 + 3), [1]), (os.urandom(1000), [])):
        body = json.dumps({"status": "OK", "ErrorCode": "0", "data": base64.b64encode(message).decode()}).encode()

        async def handler(request: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        asked.clear()
        assert run(answered_by(handler, fetch_with_hook)) == message
        assert asked == expected


def test_a_list_answer_past_what_any_axis_lists_is_refused_before_it_is_parsed():
    """Found in review: every answer was read up to getEdoc's limit (about 224 MB) and parsed at
    once, so an axis listing "{}" over and over could fill a gateway's memory with objects."""
    from aiohttp import web

    objects = b'{"status":"OK","ErrorCode":"0","data":[' + b"{}," * LIST_ANSWER_MAX_OBJECTS + b"{}]}"
    long = b'{"status":"OK","ErrorCode":"0","data":[{"docId":"' + b"x" * LIST_ANSWER_MAX_BYTES + b'"}]}'
    answers = {"objects": objects, "long": long}

    def answering(which: str):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=answers[which], content_type="application/json")

        return handler

    with pytest.raises(AxisError, match=f"more than {LIST_ANSWER_MAX_OBJECTS} objects"):
        run(answered_by(answering("objects"), lambda c: c.received_list()))
    with pytest.raises(AxisError, match=f"larger than {LIST_ANSWER_MAX_BYTES} bytes \\(the most a list"):
        run(answered_by(answering("long"), lambda c: c.agencies()))
    # a message is still read to its own, larger limit: the same bytes as getEdoc's data
    payload = base64.b64encode(b"m" * LIST_ANSWER_MAX_BYTES)
    answers["edoc"] = b'{"status":"OK","ErrorCode":"0","data":"' + payload + b'"}'
    assert len(run(answered_by(answering("edoc"), lambda c: c.get_edoc("1")))) == LIST_ANSWER_MAX_BYTES
