"""Long-poll, our extension of getReceivedEdocList: a signed ``wait`` parameter (seconds)
makes the call answer as soon as something arrives for the caller, or with an empty list
when the wait is over.

Every answer of an axis that long-polls says so in LONG_POLL_HEADER, so a gateway uses
``wait`` only with an axis that said it understands it; the national axis does not, and
gets plain polls at [poll] interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from gateway.axis.wire import Refusal
from gateway.vxp.answers import AxisCode

LONG_POLL_MAX_SECONDS = 30


def wait_seconds(text: str | None, *, long_poll: bool) -> float:
    """The ``wait`` parameter as seconds: 0 when absent, refused when this axis does not long-poll."""
    if text is not None and not long_poll:
        raise Refusal(AxisCode.BAD_REQUEST, "wait: this axis does not long-poll")
    text = (text or "0").strip()
    try:
        seconds = float(text)
    except ValueError:
        raise Refusal(AxisCode.BAD_REQUEST, f"wait must be a number of seconds, not {text!r}") from None
    if not 0 <= seconds <= LONG_POLL_MAX_SECONDS:  # NaN fails both
        raise Refusal(AxisCode.BAD_REQUEST, f"wait must be 0 to {LONG_POLL_MAX_SECONDS} seconds, not {text}")
    return seconds


class LongPolls:
    """The calls waiting for news, by agency code; an arrival or shutdown wakes them."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._closing = False
        self._ended: set[asyncio.Event] = set()  # calls to answer now, news or not (see renew)

    async def wait(self, codes: Iterable[str], seconds: float, has_news: Callable[[], bool]) -> None:
        """Return when ``has_news()`` holds, ``seconds`` are over, or the axis is closing."""
        codes = tuple(codes)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        arrived = asyncio.Event()
        for code in codes:  # registered before the first look, so no arrival falls in between
            self._waiting.setdefault(code, set()).add(arrived)
        try:
            while seconds and not self._closing and arrived not in self._ended and not has_news():
                left = deadline - loop.time()
                if left <= 0:
                    return
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), left)
        finally:
            self._ended.discard(arrived)
            for code in codes:
                waiting = self._waiting.get(code)
                if waiting is not None:
                    waiting.discard(arrived)
                    if not waiting:
                        del self._waiting[code]

    def arrived(self, codes: Iterable[str]) -> None:
        """Wake the calls waiting for any of ``codes``: a delivery for them was recorded."""
        for code in codes:
            for waiter in self._waiting.get(code, ()):
                waiter.set()

    def renew(self, codes: Iterable[str]) -> None:
        """Answer now the calls waiting for any of ``codes``, news or not: their system's agencies
        changed (one registered), and the next call waits for the new set."""
        for code in codes:
            for waiter in self._waiting.get(code, ()):
                self._ended.add(waiter)
                waiter.set()

    def close(self) -> None:
        """Answer every waiting call now (shutdown)."""
        self._closing = True
        for waiting in self._waiting.values():
            for waiter in waiting:
                waiter.set()
