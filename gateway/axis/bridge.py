"""The bridge of a provincial axis to the axis above it (the national axis, VDXP).

The provincial axis is one connected system of the upstream, holding every agency
registered here. Four loops:

- forward: documents and statuses accepted here for recipients outside go up, once each
  (sendEdoc as our system, the sender's signed file with our TraceHeader, `to` naming the
  outside recipients); a resend after a crash is the same file, and the upstream answers it
  with the same DocId;
- listen (one per message type): what the upstream holds for our agencies is fetched,
  checked as a message sent here would be, committed with its delivery to the local agency,
  and only then acknowledged upstream (`done`); listed again, it is acknowledged again;
- directory: our agencies registered upstream (registerAgency, with their parents), and the
  national directory read, so that getAgenciesList answers for the whole country;
- receipts: the upstream's word on each outside recipient of what we forwarded
  (getSentEdocList), so that the sender's getSentEdocList says it too.

A dead upstream gets a bounded request rate (the gateway's AxisBreaker: backoff, one probe at
a time, one log line a minute); traffic inside the province never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from gateway import logs
from gateway.axis.bridge_inbound import Inbound
from gateway.axis.bridge_store import BridgeStore, Forward, UpstreamAgency
from gateway.axis.checks import MessageCheck
from gateway.axis.config import AxisConfig, UpstreamConfig
from gateway.axis.store import AxisStore
from gateway.axis.wire import parent_code
from gateway.axis_client import AxisClient
from gateway.daemon import backoff
from gateway.daemon.breaker import AxisBreaker
from gateway.errors import AxisError, AxisUnavailable
from gateway.sendbody import read_if_small, stored_body
from gateway.vxp import extensions
from gateway.vxp.answers import AxisCode
from gateway.vxp.vocabulary import DeliveryState, MessageType

BATCH = 20
# How old the national directory may be when getAgenciesList answers with it, and when a
# recipient it lacks is judged: agencies registered upstream since are found.
DIRECTORY_FRESH_SECONDS = 5.0
RECIPIENT_FRESH_SECONDS = 1.0
# Forwards the upstream refuses as from an agency not ours (ErrorCode 19) are tried this many
# times, through registrations, before they fail (a code that belongs to another system there)
SENDER_PATIENCE = 10
LAST_CONTACT, DIRECTORY_AT = "last_contact", "directory_at"  # bridge_meta keys


class Bridge:
    def __init__(
        self, config: AxisConfig, store: AxisStore, check: MessageCheck, arrived: Callable[[Iterable[str]], None]
    ) -> None:
        assert config.upstream is not None
        self.config = config
        self.upstream: UpstreamConfig = config.upstream
        self.store = store
        self.tables = BridgeStore(store)
        self.check = check
        self.arrived = arrived  # wakes the long-polls of local recipients
        self.log = logs.get("bridge").bind(upstream=self.upstream.url)
        self.client = AxisClient(
            self.upstream.url,
            self.upstream.system_id,
            self.upstream.secret,
            timeout=self.upstream.timeout_seconds,
            max_answer_bytes=4 * -(-config.max_body_bytes // 3) + 1024 * 1024,
        )
        self.breaker = AxisBreaker(
            delay=self.delay, probe_seconds=self.upstream.timeout_seconds + 1, log=self.log, name="upstream"
        )
        self._forward_now = asyncio.Event()
        self._directory_now = asyncio.Event()
        self._directory_lock = asyncio.Lock()
        self._directory_tried_at = float("-inf")  # monotonic time of the last directory read, answered or not
        # Our agencies are registered upstream before anything of theirs is forwarded: the
        # upstream refuses a sender it does not count as ours (ErrorCode 19), for good.
        self._registered_once = asyncio.Event()
        self._last_contact_said = 0.0
        # seconds between two questions about one forwarded document's outside recipients
        self.receipts_every = min(10.0, 5 * self.upstream.poll_interval)
        self.inbound = Inbound(self)

    def delay(self, attempts: int) -> float:
        return backoff.delay(
            attempts, initial=self.upstream.retry_initial_seconds, maximum=self.upstream.retry_max_seconds
        )

    async def may_forward(self, code: str) -> bool:
        """Whether a recipient unknown here may be sent up: the national directory lists it (or
        was never read: the upstream will judge). A code it lacks is asked about again, with
        the directory read anew (an agency registered upstream since), unless it was just read."""
        if self.tables.upstream_knows(code) is not False:
            return True
        await self.fresh_directory(RECIPIENT_FRESH_SECONDS)
        return self.tables.upstream_knows(code) is not False

    async def fresh_directory(self, max_age: float) -> None:
        """The national directory read anew if it is older than ``max_age`` seconds (one read at
        a time: callers meanwhile wait for that one)."""
        asked = time.monotonic()
        async with self._directory_lock:
            # by the last attempt, not the last success: an upstream that refuses its directory
            # is asked again in max_age, not at every local getAgenciesList; and as of when this
            # caller asked: those who waited out a slow read take it, not one read each after it
            if asked - self._directory_tried_at > max_age and not self.breaker.paused():
                await self.refresh_directory()

    def wake(self) -> None:
        self._forward_now.set()

    def directory_now(self) -> None:
        self._directory_now.set()

    async def run(self, stopping: asyncio.Event) -> None:
        loops = [
            self._loop("forward", self.forward_due, stopping, wake=self._forward_now, every=1.0),
            self._loop(
                "directory",
                self._scheduled_directory,
                stopping,
                every=self.upstream.directory_seconds,
                wake=self._directory_now,
            ),
            self._loop("receipts", self.check_receipts, stopping, every=self.receipts_every),
            *(self._listen(kind, stopping) for kind in MessageType),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.client.close()

    async def _loop(
        self,
        name: str,
        once: Callable[[], Any],
        stopping: asyncio.Event,
        *,
        every: float,
        wake: asyncio.Event | None = None,
    ) -> None:
        while not stopping.is_set():
            if wake is not None:
                wake.clear()
            try:
                await once()
            except Exception:  # a bug or the disk: said with its trace, and tried again
                self.log.exception("bridge_error", worker=name)
            waiters = [asyncio.ensure_future(stopping.wait())]
            if wake is not None:
                waiters.append(asyncio.ensure_future(wake.wait()))
            _, pending = await asyncio.wait(waiters, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()

    def answered(self) -> None:
        self.breaker.up()
        now = time.time()
        if now - self._last_contact_said >= 15:  # for the status command; not a commit per call
            self._last_contact_said = now
            self.tables.set_meta(LAST_CONTACT, str(now))

    # --- forward ----------------------------------------------------------------------------

    async def forward_due(self) -> None:
        if not self._registered_once.is_set():
            return  # the directory loop wakes this one when it has registered our agencies
        pending = self.tables.due_forwards(BATCH)
        while pending:
            # as a gateway sends (gateway/daemon/sending.py): several small messages a call
            # once the upstream announced it (our national axis does, the real one does not)
            if len(pending) > 1 and self.client.send_batch_max:
                await self._forward_planned(pending)
                return
            if not await self._forward_one(pending.pop(0)):
                return

    async def _forward_one(self, forward: Forward, data: bytes | None = None) -> bool:
        """One forward in one call; False when the round must stop (the upstream is away)."""
        if self.breaker.paused():
            return False
        if data is None:
            try:
                data = await stored_body(self.store.docs_dir / forward.file)
            except OSError as exc:
                self._unreadable(forward, exc)
                return True
        try:
            upstream_doc_id = await self.client.send_edoc(
                data, message_type=forward.message_type, from_code=forward.from_code, to=forward.to_codes
            )
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            self.tables.postpone_forward(forward.sender_doc_id, self.delay(forward.attempts), str(exc))
            return False
        except AxisError as exc:
            self.answered()
            self._refused(forward, exc)
            return True
        self.answered()
        self._forwarded([(forward, upstream_doc_id)])
        return True

    async def _forward_planned(self, forwards: list[Forward]) -> None:
        """A round in the queue's order: consecutive small forwards of one type together, each
        other one alone in its place (extensions.plan_sends)."""
        read = read_if_small([self.store.docs_dir / f.file for f in forwards])  # local and small: in place
        readable: list[tuple[Forward, bytes | None]] = []
        for forward, data in zip(forwards, read, strict=True):
            if isinstance(data, OSError):
                self._unreadable(forward, data)
            else:
                readable.append((forward, data))
        sendables = [
            extensions.Sendable(None if data is None else len(data), forward.message_type, forward.to_codes)
            for forward, data in readable
        ]
        for call in extensions.plan_sends(sendables, self.client.send_batch_max or 1):
            batch = [readable[index] for index in call]
            alone = await self._forward_batch(batch) if len(batch) > 1 and self.client.send_batch_max else batch
            if alone is None:
                return
            for forward, data in alone:
                if not await self._forward_one(forward, data):
                    return

    async def _forward_batch(
        self, batch: list[tuple[Forward, bytes | None]]
    ) -> list[tuple[Forward, bytes | None]] | None:
        """Several forwards in one call; returns those to forward alone instead (the call itself
        refused), or None when the upstream is unavailable (the round stops)."""
        if self.breaker.paused():
            return None
        messages = [data for _, data in batch if data is not None]  # a batch is of messages read
        assert len(messages) == len(batch)
        try:
            outcomes = await self.client.send_many(
                messages,
                message_type=batch[0][0].message_type,
                from_code=self.config.code,  # the messages' senders are several: the call is ours
                to=[forward.to_codes for forward, _ in batch],
            )
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            for forward, _ in batch:
                self.tables.postpone_forward(forward.sender_doc_id, self.delay(forward.attempts), str(exc))
            return None
        except AxisError as exc:  # the call itself refused: each forward goes alone instead
            self.answered()
            self.log.warning("batch_refused", messages=len(batch), reason=str(exc))
            return batch
        self.answered()
        taken = []
        for (forward, _), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, AxisError):
                self._refused(forward, outcome)
            else:
                taken.append((forward, outcome))
        self._forwarded(taken, len(batch))
        return []

    def _forwarded(self, taken: list[tuple[Forward, str]], batch: int = 0) -> None:
        if not taken:
            return
        self.tables.forwarded([(forward.sender_doc_id, upstream_doc_id) for forward, upstream_doc_id in taken])
        for forward, upstream_doc_id in taken:
            self.log.info(
                "forwarded",
                axis_doc_id=forward.sender_doc_id,
                upstream_doc_id=upstream_doc_id,
                agency=forward.from_code,
                peer=list(forward.to_codes),
                message_type=forward.message_type,
                batch=batch or None,  # how many messages the call carried, when more than one
            )

    def _unreadable(self, forward: Forward, exc: OSError) -> None:
        self.tables.forward_failed(forward, f"the stored file cannot be read: {exc}")
        self.log.error("forward_failed", axis_doc_id=forward.sender_doc_id, reason=str(exc))

    def _refused(self, forward: Forward, exc: AxisError) -> None:
        code = AxisCode.from_wire(exc.axis_code or "")
        if code is AxisCode.SENDER_NOT_ALLOWED and forward.attempts < SENDER_PATIENCE:
            # an agency new here, not registered upstream yet: the next registration fixes it
            self.tables.postpone_forward(forward.sender_doc_id, self.delay(forward.attempts), str(exc))
            self.log.warning("forward_postponed", axis_doc_id=forward.sender_doc_id, reason=str(exc))
            self.directory_now()
            return
        if code is not None and code.permanent:
            self.tables.forward_failed(forward, str(exc))
            self.log.error(
                "forward_failed", axis_doc_id=forward.sender_doc_id, peer=list(forward.to_codes), reason=str(exc)
            )
        else:
            self.tables.postpone_forward(forward.sender_doc_id, self.delay(forward.attempts), str(exc))
            self.log.warning("forward_postponed", axis_doc_id=forward.sender_doc_id, reason=str(exc))

    # --- inbound ----------------------------------------------------------------------------

    async def _listen(self, kind: MessageType, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            waited = bool(self.upstream.long_poll and self.client.long_poll_max and not self.breaker.failures)
            try:
                found = await self.inbound.receive(kind, wait=self.upstream.long_poll_seconds if waited else 0.0)
            except Exception:
                self.log.exception("bridge_error", worker=f"listen-{kind}")
                found = None
            if found and waited:
                continue  # something was taken, more may wait: ask again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.upstream.poll_interval)

    async def _scheduled_directory(self) -> None:
        async with self._directory_lock:
            if not self.breaker.paused():
                await self.refresh_directory()

    async def refresh_directory(self) -> None:
        """Our agencies registered upstream under our system (with their parents); the national
        directory kept for getAgenciesList and for judging recipients. The caller has asked the
        breaker (asking twice would spend the one probe allowed after an outage on nothing)."""
        self._directory_tried_at = time.monotonic()
        try:
            listed = await self.client.agencies()
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return
        except AxisError as exc:
            self.answered()
            self.log.warning("upstream_directory_refused", reason=str(exc))
            self._ready()  # an upstream that will not list its directory still takes documents, or says why
            return
        self.answered()
        national = [
            UpstreamAgency(str(a.get("code")), str(a.get("name") or a.get("code")), str(a.get("pid") or ""),
                           str(a.get("mail") or ""))
            for a in listed
            if a.get("code")
        ]  # fmt: skip
        present = {a.code: a for a in national}
        ours = [a for a in self.store.agencies() if a.system_id is not None]
        known = {a.code for a in ours}
        registered = []
        for agency in ours:
            parent = agency.parent or parent_code(agency.code, known) or self.config.code
            there = present.get(agency.code)
            # kept current: registered again when its name or parent changed here (a pid the
            # upstream does not give is not a change)
            if there is not None and there.name == agency.name and there.pid in ("", parent):
                continue
            try:
                await self.client.register_agency(agency.code, agency.name, mail=agency.mail, parent=parent)
            except AxisUnavailable as exc:
                self.breaker.down(exc)
                return
            except AxisError as exc:
                self.log.error("upstream_registration_refused", agency=agency.code, reason=str(exc))
                continue
            registered.append(agency.code)
            national.append(UpstreamAgency(agency.code, agency.name, parent, agency.mail))
        if registered:
            self.log.info("registered_upstream", agencies=registered, count=len(registered))
        self.tables.replace_upstream_agencies(national)
        self.tables.set_meta(DIRECTORY_AT, str(time.time()))
        self._ready()

    def _ready(self) -> None:
        """Registration has had its turn: forwarding may begin."""
        if not self._registered_once.is_set():
            self._registered_once.set()
            self.wake()

    async def check_receipts(self) -> None:
        """Each outside recipient's state at the upstream, for what we forwarded."""
        for sender_doc_id, upstream_doc_id, outside in self.tables.to_check(BATCH, self.receipts_every):
            if self.breaker.paused():
                return
            try:
                rows = await self.client.sent_list(doc_id=upstream_doc_id)
            except AxisUnavailable as exc:
                self.breaker.down(exc)
                return
            except AxisError as exc:
                self.answered()
                self.log.warning("upstream_sent_list_refused", upstream_doc_id=upstream_doc_id, reason=str(exc))
                self.tables.outside_states(sender_doc_id, {})  # asked again after the usual pause
                continue
            self.answered()
            states = {}
            for row in rows:
                if str(row.get("senderDocId") or upstream_doc_id).lower() != upstream_doc_id.lower():
                    continue  # an upstream that ignored the docId asked for: another document's state
                code = str(row.get("toCode") or "")
                state = DeliveryState.reported(str(row.get("receiveStatus") or ""))
                if code in outside and state is not None:
                    states[code] = state
            self.tables.outside_states(sender_doc_id, states)
