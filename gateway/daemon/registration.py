"""Every hosted agency known to the axis under this installation's system (registerAgency).

The axis refuses a document whose sender is not an agency of the calling system, and for
good (ErrorCode 19): a hosted agency's messages wait, held out of the queue's sending (and
out of its deadline), until the axis's directory lists it or registering it succeeded. An
agency the directory lists but whose message the axis refused all the same (another
system's code, or one the operator has not approved) is registered again each round, with
backoff, until one of its messages is accepted. Registration only ever adds: an agency
removed from [[hosted]] stays at the axis until its operator removes it. The installation's
own agency is the axis operator's to declare, and its messages are never held.
"""

from __future__ import annotations

import asyncio
import json
import time

from gateway.axis_client import AxisClient
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Agency, Local
from gateway.errors import AxisError, AxisUnavailable

UNREGISTERED = "unregistered"  # meta key `health` reads: {code: why the axis does not have it for us}
NOT_ANSWERING = "the axis is not answering"
AT_ONCE = 8  # registerAgency calls in flight together (300 agencies at a first start)


class Registration:
    def __init__(self, local: Local, client: AxisClient, link: AxisLink) -> None:
        self.local = local
        self.client = client
        self.link = link
        self.hosted = frozenset(code for code in local.agencies if code != local.code)
        self.waiting: frozenset[str] = self.hosted  # held until the axis has them
        self._reasons: dict[str, str] = {}
        self._attempts = 0
        self._next_at = 0.0
        self._not_ours: set[str] = set()  # listed, yet their messages refused (ErrorCode 19)

    def due(self) -> bool:
        """Whether agencies still wait and the backoff since the last round has passed."""
        return bool(self.waiting) and time.monotonic() >= self._next_at

    def refused_sender(self, code: str, reason: str) -> None:
        """The axis refused a message of hosted agency ``code`` as not our system's: its
        messages wait from now on, and it is registered again at the next round."""
        self._not_ours.add(code)
        self.waiting = self.waiting | {code}
        self._record({**self._reasons, code: reason})

    def accepted(self, code: str | None) -> None:
        """The axis accepted a message of ``code``: it is ours there, whatever came before."""
        if code in self._not_ours:
            self._not_ours.discard(code)
            if not self._not_ours and not self.waiting:
                self._attempts = 0

    async def register(self, listed: set[str] | None) -> frozenset[str]:
        """Register every hosted agency the directory (``listed``) lacks, and those refused as
        not ours; ``listed`` None when the directory could not be read: those still waiting.
        Returns the agencies released from waiting."""
        if listed is None:
            missing = [self.local.agencies[code] for code in sorted(self.waiting)]
        else:
            missing = [
                self.local.agencies[code]
                for code in sorted(self.hosted)
                if code not in listed or code in self._not_ours
            ]
        gate = asyncio.Semaphore(AT_ONCE)
        outcomes = await asyncio.gather(*(self._register_one(agency, gate) for agency in missing))
        registered = {agency.code for agency, outcome in zip(missing, outcomes, strict=True) if outcome is None}
        refused = {
            agency.code: outcome for agency, outcome in zip(missing, outcomes, strict=True) if outcome is not None
        }
        if registered:
            self.local.log.info("agencies_registered", agencies=sorted(registered), count=len(registered))
        for code, reason in refused.items():
            # an axis that does not answer is the breaker's to report (axis_unavailable), once
            if self._reasons.get(code) != reason and not reason.startswith(NOT_ANSWERING):
                self.local.agencies[code].log.error(
                    "agency_not_registered",
                    reason=reason,
                    hint="its documents wait; the gateway asks again, or the axis operator registers it",
                )
        # Computed from what waits now, not what waited before the calls: push may have found
        # another agency refused meanwhile (refused_sender).
        present = set() if listed is None else {code for code in listed if code not in self._not_ours}
        before = self.waiting
        self.waiting = frozenset((self.waiting - registered - present) | set(refused))
        self._record({code: self._reasons.get(code, "not registered yet") for code in self.waiting} | refused)
        busy = bool(self.waiting or self._not_ours)  # not ours until a message is accepted: keep backing off
        self._attempts = self._attempts + 1 if busy else 0
        self._next_at = time.monotonic() + (self.link.delay(self._attempts) if busy else 0.0)
        return before - self.waiting

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
