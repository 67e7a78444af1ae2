"""push and respond: the queued messages whose time has come, sent to the axis.

With an axis that announces several messages per sendEdoc (our axis, gateway/vxp/extensions.py)
the small ones of a round go in as few calls as fit, each message still answered on its own
(a DocId, or the refusal it alone got); what is too large for a batch, and everything for an
axis that does not announce it (the national one), goes one call a message, as the SDK sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.axis_client import AxisClient
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Local
from gateway.daemon.registration import Registration
from gateway.errors import AxisError, AxisUnavailable, IllegalTransition
from gateway.sendbody import read_if_small, stored_body
from gateway.store import Outgoing
from gateway.vxp import extensions
from gateway.vxp.answers import AxisCode
from gateway.vxp.vocabulary import MessageType

BATCH = 50  # messages taken from the queue per round


class Sender:
    def __init__(
        self,
        local: Local,
        client: AxisClient,
        link: AxisLink,
        registration: Registration,
        note_time: Callable[[str], None],
    ) -> None:
        self.local = local
        self.store = local.store
        self.code = local.code
        self.client = client
        self.link = link
        self.breaker = link.breaker
        self.registration = registration
        self.note_time = note_time

    async def send_due(self, kind: MessageType) -> None:
        held = self.registration.waiting  # hosted agencies the axis does not know yet: sending would be refused
        pending = self.store.outgoing.due(kind, BATCH, longest_wait=self.link.longest_wait, excluding=held)
        while pending:
            # A gateway learns what the axis takes from its answers: after a start, the first
            # message goes alone, and the rest of the round in batches once they are announced.
            if len(pending) > 1 and self.client.send_batch_max:
                await self._send_planned(pending, kind)
                return
            if not await self._send_one(pending.pop(0), kind):
                return

    async def _send_one(self, item: Outgoing, kind: MessageType, data: bytes | None = None) -> bool:
        """One message in one call; False when the round must stop (the axis is away)."""
        if item.from_code in self.registration.waiting:  # refused as not ours earlier in this round
            return True
        if data is None:
            try:
                data = self.store.outgoing.kept([item.id]).get(item.id) or await stored_body(
                    self.store.outgoing.file(item)
                )
            except OSError as exc:  # the signed file is gone: nothing can be sent, and the queue must go on
                self._unreadable(item, exc)
                return True
        if self.breaker.paused():  # asked right before the call it may allow (see AxisBreaker.paused)
            return False
        try:
            doc_id = await self.client.send_edoc(data, message_type=kind, from_code=item.from_code or self.code)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            self.store.outgoing.postpone(item.id, self.link.delay(item.attempts), str(exc))
            return False
        except AxisError as exc:
            self.breaker.up()  # a refusal is an answer: the axis is there
            self._refused_by_axis(item, exc)
            return True
        self.breaker.up()
        self._sent([(item, doc_id)], kind)
        return True

    async def _send_planned(self, items: Sequence[Outgoing], kind: MessageType) -> None:
        """A round in the queue's order: consecutive small messages together, each larger one
        alone in its place (extensions.plan_sends)."""
        read = self._read(items)
        readable: list[tuple[Outgoing, bytes | None]] = []
        for item, data in zip(items, read, strict=True):
            if isinstance(data, OSError):
                self._unreadable(item, data)
            else:
                readable.append((item, data))
        sendables = [extensions.Sendable(None if data is None else len(data)) for _, data in readable]
        for call in extensions.plan_sends(sendables, self.client.send_batch_max or 1):
            batch = [readable[index] for index in call if readable[index][0].from_code not in self.registration.waiting]
            if len(batch) > 1 and self.client.send_batch_max:
                alone = await self._send_batch(batch, kind)
                if alone is None:
                    return
            else:
                alone = batch
            for item, data in alone:
                if not await self._send_one(item, kind, data):
                    return

    def _read(self, items: Sequence[Outgoing]) -> list[bytes | OSError | None]:
        """Each message's bytes when it fits a batch (None when it does not, or why its file
        cannot be read): small ones are kept in the database, larger ones' files read on the
        loop when small enough (our own local disk, gateway/offload.py)."""
        kept = self.store.outgoing.kept([item.id for item in items])
        on_disk = [item for item in items if item.id not in kept]
        from_files = dict(
            zip(
                (item.id for item in on_disk),
                read_if_small([self.store.outgoing.file(item) for item in on_disk]),
                strict=True,
            )
        )
        read: list[bytes | OSError | None] = []
        for item in items:
            data = kept.get(item.id)
            if data is None:
                read.append(from_files[item.id])
            else:
                read.append(data if extensions.fits_a_batch(len(data)) else None)
        return read

    async def _send_batch(
        self, batch: list[tuple[Outgoing, bytes | None]], kind: MessageType
    ) -> list[tuple[Outgoing, bytes | None]] | None:
        """Several messages in one call; returns those to send alone instead (the call itself
        refused), or None when the axis is unavailable (the round stops)."""
        if self.breaker.paused():
            return None
        messages = [data for _, data in batch if data is not None]  # a batch is of messages read
        assert len(messages) == len(batch)
        try:
            outcomes = await self.client.send_many(messages, message_type=kind, from_code=self.code)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            for item, _ in batch:
                self.store.outgoing.postpone(item.id, self.link.delay(item.attempts), str(exc))
            return None
        except AxisError as exc:  # the call itself refused: each message is sent alone instead
            self.breaker.up()
            self.local.log.warning("batch_refused", kind=kind, messages=len(batch), reason=str(exc))
            return batch
        self.breaker.up()
        sent = []
        for (item, _), outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, AxisError):
                sent.append((item, outcome))
            elif _not_ours(outcome) and item.from_code in self.registration.waiting:
                continue  # its agency was refused earlier in this call: left due, sent once registered
            else:
                self._refused_by_axis(item, outcome)
        self._sent(sent, kind, len(batch))
        return []

    def _sent(self, sent: Sequence[tuple[Outgoing, str]], kind: MessageType, batch: int = 0) -> None:
        if not sent:
            return
        unmarked = self.store.outgoing.mark_all_sent([(item.id, doc_id) for item, doc_id in sent])
        self.note_time("last_push")
        for item, doc_id in sent:
            log = self.local.log_of(item.from_code)
            if item.id in unmarked:  # the axis has it; our record was moved meanwhile (a command)
                log.warning("message_sent_unrecorded", id=item.id, axis_doc_id=doc_id, reason=unmarked[item.id])
                continue
            self.registration.accepted(item.from_code)
            log.info(
                "message_sent",
                document_id=item.document_id,
                peer=list(item.to_codes),
                kind=kind,
                axis_doc_id=doc_id,
                status_code=item.status_code,
                batch=batch or None,  # how many messages the call carried, when more than one
            )

    def _unreadable(self, item: Outgoing, exc: OSError) -> None:
        self.store.outgoing.fail(item.id, f"the signed file cannot be read: {exc}")
        self.local.log_of(item.from_code).error(
            "message_failed", document_id=item.document_id, peer=list(item.to_codes), reason=str(exc)
        )

    def _refused_by_axis(self, item: Outgoing, exc: AxisError) -> None:
        try:
            self._record_refusal(item, exc)
        except IllegalTransition:
            # settled while the call was out: failed by its deadline (the retry worker), or
            # abandoned by an administrator; that stands, and the queue goes on
            self.local.log_of(item.from_code).info(
                "message_settled_meanwhile", document_id=item.document_id, reason=str(exc)
            )

    def _record_refusal(self, item: Outgoing, exc: AxisError) -> None:
        code = AxisCode.from_wire(exc.axis_code or "")
        log = self.local.log_of(item.from_code)
        if code is AxisCode.SENDER_NOT_ALLOWED and item.from_code in self.registration.hosted:
            # a hosted agency the axis does not count as ours: its messages wait for registration
            # (one removed from [[hosted]] since is not held: for ever, out of the deadline's
            # reach, and looked up among the hosted at every round; its message fails below)
            self.registration.refused_sender(item.from_code, str(exc))
            self.store.outgoing.postpone(item.id, self.link.delay(item.attempts), str(exc))
            log.error("agency_not_registered", reason=str(exc), document_id=item.document_id)
            return  # registered again by retry's next round, with backoff
        if code is not None and code.permanent:  # sending the same bytes again cannot succeed
            self.store.outgoing.fail(item.id, str(exc))
            log.error("message_failed", document_id=item.document_id, peer=list(item.to_codes), reason=str(exc))
        else:
            self.store.outgoing.postpone(item.id, self.link.delay(item.attempts), str(exc))
            log.warning("message_postponed", document_id=item.document_id, peer=list(item.to_codes), reason=str(exc))


def _not_ours(refusal: AxisError) -> bool:
    return AxisCode.from_wire(refusal.axis_code or "") is AxisCode.SENDER_NOT_ALLOWED
