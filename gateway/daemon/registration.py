"""Every hosted agency known to the axis under this installation's system (registerAgency).

The axis refuses a document whose sender is not an agency of the calling system, and for
good (ErrorCode 19): a hosted agency's messages wait, held out of the queue's sending,
until the axis's directory lists it or registering it succeeded. Registration only ever
adds: an agency removed from [[hosted]] stays at the axis until its operator removes it.
"""

from __future__ import annotations

import asyncio
import json
import time

from gateway.axis_client import AxisClient
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Agency, Local
from gateway.errors import AxisError, AxisUnavailable

UNREGISTERED = "unregistered"  # meta key `health` reads: {code: why the axis does not know it yet}
NOT_ANSWERING = "the axis is not answering"
AT_ONCE = 8  # registerAgency calls in flight together (300 agencies at a first start)


class Registration:
    def __init__(self, local: Local, client: AxisClient, link: AxisLink) -> None:
        self.local = local
        self.client = client
        self.link = link
        # The installation's own agency is the axis operator's to declare; its messages are never held.
        self.waiting: frozenset[str] = frozenset(code for code in local.agencies if code != local.code)
        self._reasons: dict[str, str] = {}
        self._attempts = 0
        self._next_at = 0.0
        # codes the directory lists but whose messages the axis refused as not our system's
        # (ErrorCode 19): registered again each round, listed or not, until the axis agrees
        self._not_ours: set[str] = set()

    def refused_sender(self, code: str, reason: str) -> None:
        """The axis refused a message of hosted agency ``code``: not an agency of our system.
        Its messages wait from now on, and it is registered again at the next round."""
        self._not_ours.add(code)
        self.waiting = self.waiting | {code}
        self._record({**self._reasons, code: reason})
        self._next_at = min(self._next_at, time.monotonic() + self.link.delay(0))

    def due(self) -> bool:
        """Whether agencies still wait and the backoff since the last round has passed."""
        return bool(self.waiting) and time.monotonic() >= self._next_at

    async def register(self, listed: set[str] | None) -> bool:
        """Register every hosted agency the directory (``listed``) lacks; None when it could not be
        read: those still waiting. True when an agency whose messages were held may now send."""
        agencies = self.local.agencies.values()
        if listed is None:
            missing = [agency for agency in agencies if agency.code in self.waiting]
        else:
            missing = [agency for agency in agencies if agency.code not in listed or agency.code in self._not_ours]
        gate = asyncio.Semaphore(AT_ONCE)
        outcomes = await asyncio.gather(*(self._register_one(agency, gate) for agency in missing))
        registered = [agency.code for agency, outcome in zip(missing, outcomes, strict=True) if outcome is None]
        refused = {
            agency.code: outcome for agency, outcome in zip(missing, outcomes, strict=True) if outcome is not None
        }
        if registered:
            self.local.log.info("agencies_registered", agencies=registered, count=len(registered))
        for code, reason in refused.items():
            # an axis that does not answer is the breaker's to report (axis_unavailable), once
            if self._reasons.get(code) != reason and not reason.startswith(NOT_ANSWERING):
                self.local.agencies[code].log.error(
                    "agency_not_registered",
                    reason=reason,
                    hint="its documents wait; the gateway asks again, or the axis operator registers it",
                )
        before = self.waiting
        self.waiting = frozenset(code for code in self.waiting if code in refused)
        self._not_ours -= set(registered)
        self._record(refused)
        self._attempts = self._attempts + 1 if self.waiting else 0
        self._next_at = time.monotonic() + (self.link.delay(self._attempts) if self.waiting else 0.0)
        return bool(before - self.waiting)

    def _record(self, reasons: dict[str, str]) -> None:
        """What `health` reads: each hosted agency the axis does not have for us, and why."""
        if self._reasons != reasons:
            self._reasons = reasons
            self.local.store.set_meta(UNREGISTERED, json.dumps(reasons, ensure_ascii=False))

    async def _register_one(self, agency: Agency, gate: asyncio.Semaphore) -> str | None:
        """None once the axis has the agency; why not, otherwise."""
        async with gate:
            if self.link.breaker.paused():
                return NOT_ANSWERING
            try:
                name = agency.me.organ_name or agency.code
                await self.client.register_agency(agency.code, name, parent=agency.parent or "")
            except AxisUnavailable as exc:
                self.link.breaker.down(exc)
                return f"{NOT_ANSWERING}: {exc}"
            except AxisError as exc:
                self.link.breaker.up()
                return str(exc)
            self.link.breaker.up()
            return None
