"""Long-poll, our extension of getReceivedEdocList: announced in every answer, used only when
announced, answered the moment something unfetched arrives, refused by an axis without it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from gateway.errors import AxisError
from tests.axis.running import RunningAxis
from tests.axis.test_axis import DEPARTMENT, MINISTRY, client, document_to, send


async def listen(
    axis: RunningAxis, wait: float, message_type: str = "edoc", *, inline: bool = False
) -> tuple[list, float]:
    async with client(axis, "sys-h58") as c:
        await c.count()  # any answer carries the announcement
        started = time.monotonic()
        listed = await c.received_list(message_type, wait=wait, inline=inline)
        return listed, time.monotonic() - started


def test_an_arrival_answers_a_waiting_list_and_fetched_items_do_not(axis):
    async def scenario() -> None:
        waiting = asyncio.create_task(listen(axis, 25))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "a long-poll with nothing to list must wait"
        await send(axis, "sys-g22", document_to(DEPARTMENT), MINISTRY)
        listed, waited = await asyncio.wait_for(waiting, 10)
        assert [item.to_code for item in listed] == [DEPARTMENT] and waited < 25
        async with client(axis, "sys-h58") as c:
            await c.get_edoc(listed[0].doc_id)
        # fetched, not yet acknowledged: still listed, but no longer news
        listed, waited = await listen(axis, 1.0)
        assert len(listed) == 1 and waited >= 0.9
        # a status for another system does not wake us either
        listed, waited = await listen(axis, 1.0, "status")
        assert listed == [] and waited >= 0.9

    asyncio.run(scenario())


def test_a_long_poll_whose_caller_went_away_leaves_the_news_to_the_next_call(axis):
    """A gateway stopped in the middle of a long-poll: the arrival that wakes its dead call stays
    news for the call that replaces it, which otherwise waits out its whole wait."""

    async def scenario() -> None:
        gone = asyncio.create_task(listen(axis, 25, inline=True))
        await asyncio.sleep(0.5)
        gone.cancel()  # its session closes: the connection with it
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        await asyncio.sleep(0.5)
        await send(axis, "sys-g22", document_to(DEPARTMENT), MINISTRY)
        listed, waited = await asyncio.wait_for(listen(axis, 25, inline=True), 30)
        assert [item.to_code for item in listed] == [DEPARTMENT] and waited < 25, "answered as news"
        assert listed[0].data is not None, "carried in the list: never fetched by the call that went away"

    asyncio.run(scenario())


def test_the_axis_announces_long_poll_and_checks_the_wait(axis):
    async def scenario() -> None:
        async with client(axis, "sys-h58") as c:
            assert c.long_poll_max is None
            await c.count()
            assert c.long_poll_max == 30
            for bad in ("31", "-1", "soon", "nan"):
                params = {"servicetype": "eDoc", "messagetype": "edoc", "wait": bad}
                with pytest.raises(AxisError) as caught:
                    await c.call("getReceivedEdocList", params)
                assert caught.value.axis_code == "21"

    asyncio.run(scenario())


def test_an_axis_without_long_poll_neither_announces_it_nor_accepts_wait(axis_factory):
    plain = axis_factory(extra_server="long_poll = false")

    async def scenario() -> None:
        async with client(plain, "sys-h58") as c:
            await c.count()
            assert c.long_poll_max is None
            assert await c.received_list("edoc", wait=5) == []  # a plain list: no wait sent
            params = {"servicetype": "eDoc", "messagetype": "edoc", "wait": "5"}
            with pytest.raises(AxisError) as caught:
                await c.call("getReceivedEdocList", params)
            assert caught.value.axis_code == "21"

    asyncio.run(scenario())


def test_a_waiting_list_is_answered_when_its_system_registers_an_agency(axis):
    """It waits for the agencies its system had; the next list waits for the new one too."""

    async def scenario() -> None:
        waiting = asyncio.create_task(listen(axis, 25))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        async with client(axis, "sys-h58") as c:
            await c.register_agency("000.01.31.H58", "UBND xã Hậu Thành", parent="000.00.31.H58")
        listed, waited = await asyncio.wait_for(waiting, 10)
        assert listed == [] and waited < 25

    asyncio.run(scenario())
