"""What the upstream says is its word: the provincial axis's bridge against an upstream on
127.0.0.1 that answers as a faulty or hostile national axis would (found in a review, each
failed before its fix). The bridge is the real one, on a real store; only the upstream is
the test's."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import edxml
from gateway.axis.bridge import Bridge
from gateway.axis.bridge_store import UpstreamAgency
from gateway.axis.checks import MessageCheck
from gateway.axis.config import load
from gateway.axis.records import NewDocument
from gateway.axis.store import AxisStore
from gateway.errors import AxisError
from gateway.vxp.vocabulary import MessageType
from tests.messages import full_document, organization

LOCAL, LOCAL_2, OUTSIDE = "000.00.01.H58", "000.00.02.H58", "000.00.00.G09"
OK = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "Thanh cong"}


async def with_bridge(
    tmp_path: Path,
    answers: dict[str, Callable[[web.Request], Any]],
    act: Callable[[Bridge, AxisStore], Awaitable],
    *,
    locked: bool = False,
) -> tuple[object, list[tuple[str, dict]]]:
    """``act(bridge, store)`` with the bridge's upstream answering each call by ``answers[name]``;
    what it returned, and the calls the upstream saw (name, signed parameters)."""
    calls: list[tuple[str, dict]] = []

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        signed = json.loads(request.headers.get("XroadVnpt-sign-header", "{}"))
        calls.append((name, {k.removeprefix("XroadVnpt-"): v for k, v in signed.items()}))
        answer = answers[name](request) if name in answers else {**OK, "data": []}
        if inspect.isawaitable(answer):
            answer = await answer
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    path = tmp_path / "axis.toml"
    path.write_text(
        '[server]\nhost = "127.0.0.1"\nport = 0\ndata_dir = "data"\ncode = "000.00.00.H58"\n'
        f'[upstream]\nurl = "http://127.0.0.1:{port}"\nsystem_id = "sys-tiengiang-axis"\n'
        'secret = "0123456789abcdef0123"\n'
        f'[[agencies]]\ncode = "{LOCAL}"\nname = "Sở Tư pháp"\nlocked = {str(locked).lower()}\n'
        f'[[agencies]]\ncode = "{LOCAL_2}"\nname = "Sở Nội vụ"\n'
        f'[[systems]]\nid = "sys-h58"\nsecret = "0123456789abcdef0123"\nagencies = ["{LOCAL}", "{LOCAL_2}"]\n',
        encoding="utf-8",
    )
    config = load(path)
    store = AxisStore(config.data_dir)
    store.seed_agencies(  # as the axis does at start
        (a.code, a.name, a.mail, next((s.id for s in config.systems if a.code in s.agencies), None), a.locked)
        for a in config.agencies
    )
    bridge = Bridge(config, store, MessageCheck(config, None), lambda codes: None)
    try:
        return await act(bridge, store), calls
    finally:
        await bridge.client.close()
        store.close()
        await runner.cleanup()


def test_an_item_listed_again_after_it_was_taken_is_acknowledged_not_counted_as_new(tmp_path):
    """An upstream that keeps listing what we took (and acknowledged) got asked again at once,
    for ever: the listen loop goes on without a pause while a list brought something new."""
    listed = {**OK, "data": [{"docId": "up-1", "from": OUTSIDE, "to": LOCAL, "messageType": "edoc"}]}

    async def act(bridge: Bridge, store: AxisStore) -> int | None:
        store.connection.execute(
            "INSERT INTO inbound (upstream_doc_id, message_type, sender_doc_id, to_code, acked, received_at)"
            " VALUES ('up-1', 'edoc', 'local-1', ?, 1, ?)",
            (LOCAL, time.time()),
        )
        return await bridge.inbound.receive(MessageType.EDOC)

    taken, calls = asyncio.run(with_bridge(tmp_path, {"getReceivedEdocList": lambda r: listed}, act))
    assert taken == 0
    assert [(name, params.get("docId"), params.get("status")) for name, params in calls[1:]] == [
        ("updateStatus", "up-1", "done")
    ]


def test_receipts_of_another_document_in_an_answer_are_not_taken_for_ours(tmp_path):
    """getSentEdocList asked about one DocId, answered by an upstream that ignores the filter:
    each row names its senderDocId, and only ours counts (a row naming none is taken as ours)."""
    rows = [
        {"senderDocId": "up-1", "toCode": OUTSIDE, "receiveStatus": "processing"},
        {"senderDocId": "up-other", "toCode": OUTSIDE, "receiveStatus": "done"},
    ]

    async def act(bridge: Bridge, store: AxisStore) -> str:
        document = NewDocument(
            MessageType.EDOC, "sys-h58", LOCAL, "key-1", "d-1", "t", "1/UBND", "", "0" * 64, 10, (OUTSIDE,)
        )
        store.record_document("local-1", document, forward_to=(OUTSIDE,))
        bridge.tables.forwarded([("local-1", "up-1")])
        await bridge.check_receipts()
        return store.connection.execute(
            "SELECT state FROM deliveries WHERE sender_doc_id = 'local-1' AND to_code = ?", (OUTSIDE,)
        ).fetchone()[0]

    state, calls = asyncio.run(with_bridge(tmp_path, {"getSentEdocList": lambda r: {**OK, "data": rows}}, act))
    assert state == "processing"
    assert [(name, params.get("docId")) for name, params in calls] == [("getSentEdocList", "up-1")]


def test_an_upstreams_refusal_of_megabytes_is_told_in_one_short_line(tmp_path):
    """An ErrorDesc of 5 MB with line breaks reached every log line and forwards.last_error
    that named the refusal."""
    refusal = {"status": "FAIL", "ErrorCode": "99", "ErrorDesc": "x\n" * 2_500_000}

    async def act(bridge: Bridge, store: AxisStore) -> AxisError:
        try:
            await bridge.client.sent_list(doc_id="up-1")
        except AxisError as exc:
            return exc
        raise AssertionError("a FAIL answer was taken")

    error, _ = asyncio.run(with_bridge(tmp_path, {"getSentEdocList": lambda r: refusal}, act))
    assert "\n" not in str(error) and len(str(error)) < 500 and "(4999999 characters)" in str(error)
    assert error.axis_code == "99"


def test_recipient_checks_that_waited_out_a_slow_directory_read_take_it(tmp_path):
    """Ten sendEdocs to a code the national directory lacks, while its read takes 2 s: one read
    for all of them (before: one after another, each waiting for the last, 20 s in all)."""

    async def slow_directory(request: web.Request) -> dict:
        await asyncio.sleep(2)
        return {**OK, "data": [{"code": "000.00.00.G22", "name": "Văn phòng Chính phủ"}]}

    async def act(bridge: Bridge, store: AxisStore) -> list[bool]:
        # read before, and lacking the code
        bridge.tables.replace_upstream_agencies([UpstreamAgency("000.00.00.G22", "Văn phòng Chính phủ", "", "")])
        return await asyncio.gather(*(bridge.may_forward("000.00.00.G99") for _ in range(10)))

    verdicts, calls = asyncio.run(with_bridge(tmp_path, {"getAgenciesList": slow_directory}, act))
    assert verdicts == [False] * 10
    assert [name for name, _ in calls].count("getAgenciesList") == 1


def test_a_delivery_for_an_agency_locked_here_is_left_upstream_unfetched(tmp_path):
    """A local sender is refused a locked recipient; what comes down for it was taken in."""
    listed = {**OK, "data": [{"docId": "up-2", "from": OUTSIDE, "to": LOCAL, "messageType": "edoc"}]}

    async def act(bridge: Bridge, store: AxisStore) -> int | None:
        return await bridge.inbound.receive(MessageType.EDOC)

    taken, calls = asyncio.run(with_bridge(tmp_path, {"getReceivedEdocList": lambda r: listed}, act, locked=True))
    assert taken == 0
    assert [(name, params.get("docId"), params.get("status")) for name, params in calls[1:]] == [
        ("updateStatus", "up-2", "fail")
    ]


def test_a_documentid_the_sender_used_again_for_another_document_delivers_that_document(tmp_path):
    """Found in review: what came down was known by its sender and DocumentId alone, so a
    second document under the first one's DocumentId, for another of our agencies, was
    recorded as that agency's copy of the first: the first file went to an agency it does not
    name (which refuses it), and the second was acknowledged upstream and lost."""
    base = full_document(sender=OUTSIDE, attachments=0)
    first = dataclasses.replace(base, to=(organization(LOCAL, "Sở Tư pháp"),), subject="Văn bản thứ nhất")
    second = dataclasses.replace(base, to=(organization(LOCAL_2, "Sở Nội vụ"),), subject="Văn bản thứ hai")
    assert first.document_id == second.document_id
    files = {"up-1": edxml.build(first), "up-2": edxml.build(second)}
    files["up-3"] = files["up-2"]  # the second sent again, under a new upstream docId
    lists = iter([("up-1", LOCAL), ("up-2", LOCAL_2), ("up-3", LOCAL_2)])

    def listed(request: web.Request) -> dict:
        doc_id, to = next(lists)
        return {**OK, "data": [{"docId": doc_id, "from": OUTSIDE, "to": to, "messageType": "edoc"}]}

    async def fetched(request: web.Request) -> dict:
        doc_id = json.loads(request.headers["XroadVnpt-sign-header"])["XroadVnpt-docId"]
        return {**OK, "data": base64.b64encode(files[doc_id]).decode("ascii")}

    async def act(bridge: Bridge, store: AxisStore) -> list[tuple[str, str, str]]:
        for _ in range(3):
            assert await bridge.inbound.receive(MessageType.EDOC) == 1
        rows = store.connection.execute(
            "SELECT d.to_code, d.sender_doc_id, f.file FROM deliveries d JOIN documents f USING (sender_doc_id)"
            " ORDER BY d.to_code, f.received_at"
        )
        return [(to, sender_doc_id, (store.docs_dir / file).read_text("utf-8")) for to, sender_doc_id, file in rows]

    delivered, _ = asyncio.run(with_bridge(tmp_path, {"getReceivedEdocList": listed, "getEdoc": fetched}, act))
    subjects = [(to, "thứ nhất" if "thứ nhất" in text else "thứ hai") for to, _, text in delivered]
    assert subjects == [(LOCAL, "thứ nhất"), (LOCAL_2, "thứ hai")]  # the second's resend: known, once
