"""Several messages in one sendEdoc (gateway/axis/multisend.py): each judged as if it came alone,
recorded once, answered in order; the call itself refused only for what concerns it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime

import pytest

from gateway import edxml
from gateway.axis.store import AxisStore
from gateway.vxp.extensions import MOST_MESSAGES, SEND_MESSAGE_MAX_BYTES, send_batch_params
from tests.axis.test_axis import DEPARTMENT, DISTRICT, MINISTRY, PROVINCE, client, document_to, refused
from tests.messages import full_status


def status_to(answered: str, minute: int, *, sender: str = DEPARTMENT) -> bytes:
    """A 01 from ``sender`` for a document of ``answered``, told apart by its time."""
    status = full_status(edxml.StatusCode.ARRIVED, sender=sender)
    status = dataclasses.replace(
        status,
        response_for=dataclasses.replace(status.response_for, organ_id=edxml.AgencyCode(answered)),
        timestamp=datetime(2023, 7, 3, 9, minute),
    )
    return edxml.build(status)


async def announced(c) -> int:
    await c.count()  # any answer carries the announcements
    assert c.send_batch_max == MOST_MESSAGES
    return c.send_batch_max


def test_one_call_carries_many_statuses_each_recorded_once_and_a_resend_gets_the_same_doc_ids(axis):
    statuses = [status_to(MINISTRY, minute) for minute in range(5)]

    async def scenario() -> None:
        async with client(axis, "sys-h58") as c:
            await announced(c)
            first = await c.send_many(statuses, message_type="status", from_code=PROVINCE)
            assert all(isinstance(doc_id, str) for doc_id in first) and len(set(first)) == 5
            again = await c.send_many(statuses, message_type="status", from_code=PROVINCE)
            assert again == first  # judged as a resend of each, as sendEdoc judges one
        async with client(axis, "sys-g22") as ministry:
            await ministry.count()
            listed = await ministry.received_list("status", inline=True)
            assert sorted(item.data for item in listed) == sorted(statuses)
            assert {item.from_code for item in listed} == {DEPARTMENT}

    asyncio.run(scenario())
    store = AxisStore(axis.folder / "axis-data")
    try:
        assert store.requests_remembered("sendEdoc") == 2
    finally:
        store.close()


def test_a_refused_message_is_answered_alone_and_the_others_go_through(axis):
    good = status_to(MINISTRY, 1)
    not_ours = status_to(MINISTRY, 2, sender=MINISTRY)  # sys-h58 does not send for the ministry
    to_nobody = status_to("000.00.00.Z99", 3)
    broken = b"<edXMLEnvelope>not closed"
    document = document_to(DISTRICT, sender=DEPARTMENT)  # an edoc in a call that says status

    async def scenario() -> list:
        async with client(axis, "sys-h58") as c:
            await announced(c)
            return await c.send_many(
                [good, not_ours, to_nobody, broken, document, status_to(MINISTRY, 4)],
                message_type="status",
                from_code=PROVINCE,
            )

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[0], str) and isinstance(outcomes[5], str)
    codes = [getattr(outcome, "axis_code", None) for outcome in outcomes]
    assert codes[1:5] == ["19", "18", "10", "21"], outcomes


def test_a_call_whose_parts_do_not_add_up_is_refused_whole(axis):
    statuses = [status_to(MINISTRY, minute) for minute in range(3)]

    async def scenario() -> None:
        async with client(axis, "sys-h58") as c:
            await announced(c)
            base = {"servicetype": "eDoc", "messagetype": "status", "from": PROVINCE}
            body = b"".join(statuses)
            params = {**base, **send_batch_params(statuses)}
            # a body longer than its sizes, a digest of another message, too many, one too large
            assert await refused(c.call("sendEdoc", params, body + b"x", "application/octet-stream")) == "21"
            wrong = {**params, "hash-files": json.dumps(json.loads(params["hash-files"])[::-1])}
            answer = await c.call("sendEdoc", wrong, body, "application/octet-stream")
            assert [r.get("ErrorCode") for r in answer["results"]] == ["12", None, "12"]
            many = {**base, **send_batch_params(statuses * (MOST_MESSAGES // 3 + 1))}
            assert (
                await refused(c.call("sendEdoc", many, body * (MOST_MESSAGES // 3 + 1), "application/octet-stream"))
                == "21"
            )
            large = {**base, "hash-files": json.dumps(["0" * 64]), "sizes": json.dumps([SEND_MESSAGE_MAX_BYTES + 1])}
            assert await refused(c.call("sendEdoc", large, b"", "application/octet-stream")) == "21"
            for bad in ("not json", '["abc"]', "{}"):
                odd = {**params, "hash-files": bad}
                assert await refused(c.call("sendEdoc", odd, body, "application/octet-stream")) == "21"
            routed = {**params, "to": json.dumps([MINISTRY])}
            assert await refused(c.call("sendEdoc", routed, body, "application/octet-stream")) == "21"

    asyncio.run(scenario())


def test_an_axis_without_batching_neither_announces_nor_takes_several_messages(axis_factory):
    plain = axis_factory(extra_server="batching = false")
    statuses = [status_to(MINISTRY, minute) for minute in range(2)]

    async def scenario() -> None:
        async with client(plain, "sys-h58") as c:
            await c.count()
            assert c.send_batch_max is None
            with pytest.raises(ValueError, match="1 to None"):
                await c.send_many(statuses, message_type="status", from_code=PROVINCE)
            params = {"servicetype": "eDoc", "messagetype": "status", **send_batch_params(statuses)}
            assert await refused(c.call("sendEdoc", params, b"".join(statuses), "application/octet-stream")) == "21"

    asyncio.run(scenario())


def test_each_message_may_name_its_own_recipients_as_a_relay_does(axis):
    first = document_to(DEPARTMENT, DISTRICT, document_id=f"{MINISTRY},2023/07/03,1/VPCP")
    second = document_to(DEPARTMENT, DISTRICT, document_id=f"{MINISTRY},2023/07/03,2/VPCP")
    stray = document_to(DEPARTMENT, document_id=f"{MINISTRY},2023/07/03,3/VPCP")

    async def scenario() -> None:
        async with client(axis, "sys-g22") as c:
            await announced(c)
            outcomes = await c.send_many(
                [first, second, stray], message_type="edoc", from_code=MINISTRY, to=[[DEPARTMENT], [], [DISTRICT]]
            )
            assert isinstance(outcomes[0], str) and isinstance(outcomes[1], str)
            assert getattr(outcomes[2], "axis_code", None) == "21"  # not a recipient of its file
            params = {"servicetype": "eDoc", "messagetype": "edoc", **send_batch_params([first, second])}
            for bad in ('[["x"]]', '[["x"], 3]', '{"a": 1}'):
                odd = {**params, "to-each": bad}
                assert await refused(c.call("sendEdoc", odd, first + second, "application/octet-stream")) == "21"
        async with client(axis, "sys-h58") as h58:
            listed = await h58.received_list("edoc")
        assert sorted(item.to_code for item in listed) == sorted([DEPARTMENT, DEPARTMENT, DISTRICT])

    asyncio.run(scenario())
