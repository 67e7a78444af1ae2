"""The event loop the long-running services (`run`, `axis`, `pki serve`) turn on.

uvloop (libuv under asyncio's interface) where it is installed: a province's gateways and axes
spend a good part of their CPU in the event loop itself, in its callbacks, timers, socket reads
and thread hand-offs, which uvloop does in C. asyncio's own loop where it is not (another
platform, a build without it): the behaviour is the same, only slower.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency; kept optional for other platforms
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
