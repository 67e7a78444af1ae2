"""Where a step of work runs: on the event loop when it is small, in a worker thread when not.

Handing a call to a worker thread and taking its result back costs about 0.1 ms of CPU on the
development machine (asyncio.to_thread of a function that does nothing: 110 µs each, one
after the other), as much as checking a small status message. For a small message the thread
buys nothing: the check is Python holding the GIL nearly throughout, so the event loop waits
for it either way. With every hand-off of every process run in place (an experiment), the
replay of the province's quarter measured 15-20 % less CPU per delivery (docs/performance.md).
Large messages still go to a thread, where lxml's parse and the digests release the GIL and
the loop is not held for long; disk writes that fsync and folders the document system shares
(perhaps over the network) always do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Work on at most this many bytes of messages runs in place: 64 KiB is a status or a document
# without a large attachment, checked in about a millisecond; a batch of small ones up to 256 KiB.
SMALL_BYTES = 64 * 1024
SMALL_BATCH_BYTES = 256 * 1024


async def in_place_if_small(
    size: int, func: Callable[..., T], /, *args: object, limit: int = SMALL_BYTES, **kwargs: object
) -> T:
    """``func(*args, **kwargs)`` on the loop when ``size`` (the bytes it works on) is at most
    ``limit``, in a worker thread otherwise."""
    if size <= limit:
        return func(*args, **kwargs)
    return await asyncio.to_thread(func, *args, **kwargs)


class LargePermit:
    """A place among the large messages a process holds at once (a semaphore's), taken by a
    delivery from the moment its answer turns out large until it is done, and given back
    once however the delivery ends."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self._gate = gate
        self._held = False

    async def acquire(self) -> None:
        await self._gate.acquire()
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.release()
