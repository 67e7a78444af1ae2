"""Our axis's batching extensions (gateway/axis/batching.py): small messages carried in the
list, many docIds in one updateStatus; announced in every answer, used only when announced,
refused by an axis without them, and never a way to reach another system's deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os

import pybase64
import pytest

from gateway import edxml
from gateway.axis.batching import INLINE_MAX_BYTES, STATUS_BATCH_MAX
from gateway.edxml.model import Attachment
from gateway.errors import AxisUnavailable
from gateway.vxp.extensions import directory_digest
from tests.axis.running import write_config
from tests.axis.test_axis import DEPARTMENT, DISTRICT, MINISTRY, NGHE_AN, client, document_to, refused, send
from tests.messages import full_document


def test_the_list_carries_small_messages_as_get_edoc_answers_them_and_counts_them_fetched(axis):
    async def scenario() -> None:
        ids = [f"{MINISTRY},2023/07/03,{n}/VPCP" for n in range(3)]
        sent = [await send(axis, "sys-g22", document_to(DEPARTMENT, document_id=i), MINISTRY) for i in ids]
        assert len(set(sent)) == 3
        async with client(axis, "sys-h58") as c:
            assert c.inline_max is None and c.status_batch_max is None
            plain = await c.received_list("edoc")  # the first answer carries the announcement
            assert c.inline_max == INLINE_MAX_BYTES and c.status_batch_max == STATUS_BATCH_MAX
            assert len(plain) == 3 and all(item.data is None for item in plain)
            carried = await c.received_list("edoc", inline=True)
            assert [item.doc_id for item in carried] == [item.doc_id for item in plain]
            for item in carried:
                assert item.data is not None and item.data == await c.get_edoc(item.doc_id)
        # counted fetched: a long-poll no longer answers at once for them
        async with client(axis, "sys-h58") as c:
            await c.count()
            started = asyncio.get_running_loop().time()
            again = await c.received_list("edoc", wait=1.0, inline=True)
            assert len(again) == 3 and asyncio.get_running_loop().time() - started >= 0.9

    asyncio.run(scenario())


def test_a_message_larger_than_asked_is_listed_without_its_body(axis):
    async def scenario() -> None:
        await send(axis, "sys-g22", document_to(DISTRICT), MINISTRY)
        async with client(axis, "sys-h58") as c:
            await c.count()
            params = {"servicetype": "eDoc", "messagetype": "edoc", "inline": "100"}  # smaller than any edXML
            answer = await c.call("getReceivedEdocList", params)
            (item,) = answer["data"]
            assert "data" not in item
            params["inline"] = str(10 * INLINE_MAX_BYTES)  # capped, not refused
            (item,) = (await c.call("getReceivedEdocList", params))["data"]
            assert pybase64.b64decode(item["data"]) == await c.get_edoc(item["docId"])
            for bad in ("-1", "lots", "1e3"):
                params["inline"] = bad
                assert await refused(c.call("getReceivedEdocList", params)) == "21"

    asyncio.run(scenario())


def test_one_update_status_settles_many_and_names_what_it_did_not_take(axis):
    async def scenario() -> None:
        for n in range(3):
            await send(
                axis, "sys-g22", document_to(DEPARTMENT, NGHE_AN, document_id=f"{MINISTRY},2023/07/03,{n}/VP"), MINISTRY
            )
        async with client(axis, "sys-h41") as other:
            theirs = [item.doc_id for item in await other.received_list("edoc")]
        async with client(axis, "sys-h58") as c:
            ours = [item.doc_id for item in await c.received_list("edoc")]
            assert len(ours) == 3 and len(theirs) == 3
            # another system's delivery and an unknown one are named back, like for one docId
            failed = await c.update_statuses([*ours, theirs[0], "no-such-doc"], "done")
            assert failed == {theirs[0], "no-such-doc"}
            assert await c.received_list("edoc") == []
        async with client(axis, "sys-h41") as other:
            assert len(await other.received_list("edoc")) == 3  # untouched
            params = {"docIds": json.dumps(theirs), "status": "pending"}
            assert await refused(other.call("updateStatus", params)) == "21"
            nested = "[" * 3000 + "]" * 3000  # deeper than the JSON parser goes: still a refusal, not a 20
            for bad in ("[]", "not json", '{"a": 1}', "[1, 2]", json.dumps(["x"] * (STATUS_BATCH_MAX + 1)), nested):
                assert await refused(other.call("updateStatus", {"docIds": bad, "status": "done"})) == "21"
            assert await other.update_statuses(theirs, "fail") == set()

    asyncio.run(scenario())


def test_an_axis_without_batching_neither_announces_nor_accepts_it(axis_factory):
    plain = axis_factory(extra_server="batching = false")

    async def scenario() -> None:
        await send(plain, "sys-g22", document_to(DEPARTMENT), MINISTRY)
        async with client(plain, "sys-h58") as c:
            listed = await c.received_list("edoc", inline=True)  # not announced: a plain list
            assert c.inline_max is None and c.status_batch_max is None
            assert len(listed) == 1 and listed[0].data is None
            with pytest.raises(ValueError, match="not announced"):
                await c.update_statuses([listed[0].doc_id], "done")
            params = {"servicetype": "eDoc", "messagetype": "edoc", "inline": "1000"}
            assert await refused(c.call("getReceivedEdocList", params)) == "21"
            params = {"docIds": json.dumps([listed[0].doc_id]), "status": "done"}
            assert await refused(c.call("updateStatus", params)) == "21"
            # the directory as the national axis gives it: no digest, and a `known` changes nothing
            agencies, digest = await c.agencies_since(None)
            assert digest is None and agencies and not c.directory_digests
            answer = await c.call("getAgenciesList", {"known": directory_digest(json.dumps(agencies).encode())})
            assert "digest" not in answer and "unchanged" not in answer and answer["data"] == agencies

    asyncio.run(scenario())


def test_a_list_carries_at_most_its_budget(axis):
    """Messages beyond the answer's budget are listed bare, and fetched with getEdoc."""

    async def scenario() -> None:
        # about 55 KB each (a 40 KB attachment in base64): a megabyte carries some of the 30
        scan = Attachment(content_id="scan", attachment_name="scan.pdf", data=os.urandom(40_000))
        base = full_document(sender=MINISTRY)
        to = (dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(DEPARTMENT)),)
        for index in range(30):
            document = dataclasses.replace(
                base, to=to, attachments=(scan,), business=None, document_id=f"{MINISTRY},2023/07/03,{index}/VPCP"
            )
            await send(axis, "sys-g22", edxml.build(document), MINISTRY)
        async with client(axis, "sys-h58") as c:
            await c.count()
            listed = await c.received_list("edoc", inline=True)
            carried = [item for item in listed if item.data is not None]
            assert len(listed) == 30 and 0 < len(carried) < 30
            assert sum(len(item.data or b"") for item in carried) <= 1024 * 1024

    asyncio.run(scenario())


def test_an_axis_that_stops_announcing_an_extension_gets_plain_calls_from_then_on(axis_factory):
    """The same URL, restarted without its extensions (or replaced by an axis like the national
    one): the next answer withdraws them, and the client stops using them at once instead of
    having each call refused until it restarts."""
    axis = axis_factory()

    async def scenario() -> None:
        await send(axis, "sys-g22", document_to(DEPARTMENT), MINISTRY)
        async with client(axis, "sys-h58") as c:
            await c.count()
            assert c.long_poll_max == 30 and c.inline_max == INLINE_MAX_BYTES
            axis.service.stop()
            config = write_config(axis.folder, extra_server="long_poll = false\nbatching = false")
            config.write_text(config.read_text().replace("port = 0", f"port = {axis.port}"))
            restarted = axis_factory(folder=axis.folder)
            assert restarted.url == c.url
            with contextlib.suppress(AxisUnavailable):  # the kept connection was to the old process
                await c.count()
            await c.count()
            assert c.long_poll_max is None and c.inline_max is None and c.status_batch_max is None
            # neither wait nor inline sent: this axis would refuse either (21)
            listed = await c.received_list("edoc", wait=5, inline=True)
            assert len(listed) == 1 and listed[0].data is None
            await c.update_status(listed[0].doc_id, "done")
            assert await c.received_list("edoc") == []

    asyncio.run(scenario())
