"""What deliver does with our axis's batching (gateway/axis/batching.py): keeps the messages a
list carried until their turn, and tells the axis a round's outcomes in one updateStatus.

With an axis that announces neither (the national one), nothing is carried and each
delivery is acknowledged with a call of its own, as before.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence

from gateway.axis_client import Listed
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Local
from gateway.errors import AxisError, AxisUnavailable
from gateway.vxp.vocabulary import DeliveryState

# Messages a list carried wait for deliver up to this many bytes; beyond it, or lost in a
# restart, they are fetched with getEdoc when their turn comes.
CARRIED_BUDGET_BYTES = 8 * 1024 * 1024
# Longer than any list call lasts (a long-poll and the call's timeout): see Acknowledgements.after.
ACKED_REMEMBERED_SECONDS = 180.0


class Carried:
    """The messages lists carried, by axis docId, until deliver takes them."""

    def __init__(self, budget: int = CARRIED_BUDGET_BYTES) -> None:
        self._messages: dict[str, bytes] = {}
        self._bytes = 0
        self._budget = budget

    def keep(self, item: Listed) -> None:
        """Keep a newly listed item's message, if the list carried it and it fits."""
        if item.data is None or item.doc_id in self._messages:
            return
        if self._bytes + len(item.data) > self._budget:
            return
        self._messages[item.doc_id] = item.data
        self._bytes += len(item.data)

    def take(self, axis_doc_id: str) -> bytes | None:
        """The message, once: it is no longer kept (a retry of its delivery fetches it)."""
        data = self._messages.pop(axis_doc_id, None)
        if data is not None:
            self._bytes -= len(data)
        return data


class Acknowledgements:
    """updateStatus done for what deliver settled: many docIds a call where the axis takes them."""

    def __init__(self, local: Local, link: AxisLink) -> None:
        self.store = local.store
        self.log = local.log
        self.link = link
        self._in_hand: set[str] = set()  # settling or settled, deliver's to acknowledge: not retry's
        self._answered: collections.OrderedDict[str, float] = collections.OrderedDict()  # oldest first

    def hold(self, axis_doc_id: str) -> None:
        """Deliver is settling this delivery and will acknowledge it: retry leaves it alone."""
        self._in_hand.add(axis_doc_id)

    def release(self, axis_doc_id: str) -> None:
        """Deliver will not acknowledge it after all (its outcome did not commit)."""
        self._in_hand.discard(axis_doc_id)

    def held(self, axis_doc_id: str) -> bool:
        return axis_doc_id in self._in_hand

    async def send(self, axis_doc_ids: Sequence[str]) -> None:
        """Tell the axis these are settled. What it does not take now stays unacknowledged, and
        retry asks again after a pause."""
        try:
            await self._send(list(axis_doc_ids))
        finally:
            self._in_hand.difference_update(axis_doc_ids)

    async def _send(self, axis_doc_ids: list[str]) -> None:
        client = self.link.client
        while axis_doc_ids:
            if self.link.breaker.paused():  # each call asks, as every worker does (AxisBreaker)
                self.store.incoming.postpone_ack(axis_doc_ids, self.link.delay(0))
                return
            # read once per call: any answer may withdraw or change the announcement
            most = client.status_batch_max
            chunk, axis_doc_ids = axis_doc_ids[: most or 1], axis_doc_ids[most or 1 :]
            try:
                if most:
                    refused = await client.update_statuses(chunk, DeliveryState.DONE)
                else:
                    await client.update_status(chunk[0], DeliveryState.DONE)
                    refused = set()
            except AxisUnavailable as exc:
                self.link.breaker.down(exc)
                self.store.incoming.postpone_ack(chunk + axis_doc_ids, self.link.delay(0))
                return
            except AxisError as exc:
                self.link.breaker.up()
                refused, reason = set(chunk), str(exc)
            else:
                self.link.breaker.up()
                reason = "unknown to the axis"
            taken = [doc_id for doc_id in chunk if doc_id not in refused]
            self.store.incoming.mark_acked(taken)
            self._note_answered(taken)
            if refused:
                self.store.incoming.postpone_ack(sorted(refused), self.link.delay(0))
                for doc_id in sorted(refused):
                    self.log.warning("acknowledge_refused", axis_doc_id=doc_id, reason=reason)

    def answered_after(self, axis_doc_id: str, moment: float) -> bool:
        """Whether our acknowledgement of ``axis_doc_id`` was answered after ``moment`` (monotonic).

        A list asked before then may have been answered before the acknowledgement landed and
        still name the delivery: that is no sign the acknowledgement was lost.
        """
        return self._answered.get(axis_doc_id, -math.inf) > moment

    def _note_answered(self, axis_doc_ids: Sequence[str]) -> None:
        now = time.monotonic()
        for doc_id in axis_doc_ids:
            self._answered[doc_id] = now
            self._answered.move_to_end(doc_id)
        while self._answered and next(iter(self._answered.values())) < now - ACKED_REMEMBERED_SECONDS:
            self._answered.popitem(last=False)
