"""The axis's agency directory as the gateway keeps it: code → name, with when it was read.

Intake names recipients from it and refuses a code it lacks (the axis would, with ErrorCode 18,
after the document was queued); the daemon reads it every housekeeping interval, and again
when a drop-folder entry is newer than it, and `send` reads it when it lacks a recipient.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from gateway.axis_client import AxisClient
from gateway.config import Config
from gateway.errors import AxisError, AxisUnavailable
from gateway.store import GatewayStore

NAMES, READ_AT = "directory", "directory_at"  # meta keys


def names_of(agencies: list[dict[str, Any]]) -> dict[str, str]:
    """getAgenciesList's items as code → name (the code where an agency has no name)."""
    return {str(a.get("code")): str(a.get("name") or a.get("code")) for a in agencies if a.get("code")}


def remember(store: GatewayStore, names: dict[str, str]) -> float:
    """Keep the directory just read; the time it was read."""
    now = time.time()
    text = json.dumps(names, ensure_ascii=False)
    # a province's directory is 1,196 names: written again only when it differs from what the
    # store holds (which `send`, another process, may have written since the daemon did)
    if store.meta(NAMES) != text:
        store.set_meta(NAMES, text)
    store.set_meta(READ_AT, str(now))
    return now


def recalled(store: GatewayStore) -> tuple[dict[str, str], float]:
    """The directory as last read, and when (0: never)."""
    return json.loads(store.meta(NAMES) or "{}"), float(store.meta(READ_AT) or 0.0)


def read_now(config: Config) -> dict[str, str] | None:
    """The directory asked of the axis from a command; None when the axis cannot answer."""
    assert config.axis is not None

    async def ask() -> list[dict[str, Any]]:
        async with AxisClient(
            config.axis.url, config.axis.system_id, config.secret, timeout=config.axis.timeout_seconds
        ) as client:
            return await client.agencies()

    try:
        return names_of(asyncio.run(ask()))
    except (AxisError, AxisUnavailable):
        return None
