"""The gateway's work: each public coroutine is one worker run, small, idempotent and safe to
kill at any instruction, because every step is either repeatable or recorded first.

Outgoing: intake (drop folder) or a command → built, strictly validated, signed, written to
``data_dir/outgoing`` and committed as `queued` → push/respond send it → `sent` with the
axis's DocId (a resend after a crash returns the same DocId: the axis keys on DocumentId).
Incoming: poll lists → deliver fetches, verifies, writes the inbox atomically, commits
`delivered` together with the status 01 it owes (or `rejected` with its 02) → acknowledges
at the axis. A delivered-but-unacknowledged item is acknowledged again, never redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable

from gateway import edxml
from gateway.axis_client import AxisClient, Listed
from gateway.axis_reading import answer_limit
from gateway.config import Config, ConfigError
from gateway.daemon import directory, inbox, trusting
from gateway.daemon.deliver import Deliverer
from gateway.daemon.examine import Receiver
from gateway.daemon.health import warn_of_certificate_expiry
from gateway.daemon.intake import Intake
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Local
from gateway.daemon.pdfcheck import PdfChecks
from gateway.daemon.registration import Registration
from gateway.daemon.sending import Sender
from gateway.errors import AxisError, AxisUnavailable, KeyMaterialError
from gateway.store import IncomingState
from gateway.vxp.protocol import accepted_time
from gateway.vxp.vocabulary import MessageType

BATCH = 50
META_EVERY = 15.0
PDF_CHILD_IDLE_SECONDS = 600.0  # the PDF reader process is let go after this long without a PDF


class Gateway:
    def __init__(self, config: Config) -> None:
        if config.axis is None:
            raise ConfigError("[agency] and [axis] are required to run the gateway", where=str(config.path))
        local = Local.open(config)
        self.local = local
        self.config = config
        self.code, self.me, self.identity = local.code, local.me, local.identity
        signing = config.signing
        where = f"{config.path}: signing.trust"
        self.trust = trusting.load_trust(config)
        for agency in local.agencies.values():  # what recipients will judge each signature by
            try:
                edxml.check_own_identity(agency.identity, self.trust)
            except KeyMaterialError as exc:
                raise KeyMaterialError(
                    f"{exc.message} ({agency.key}.cert of {agency.code}, against {signing.trust})", where=where
                ) from None
        self.limits = config.limits
        self.receiver = Receiver(
            self.code,
            self.trust,
            config.limits,
            require_signatures=signing.require_signatures,
            allow_sha1=signing.allow_sha1,
        )
        self.outbox = config.paths.outbox
        self.inbox = config.paths.inbox
        self.store = local.store
        self.outgoing = local.outgoing
        self.client = AxisClient(
            config.axis.url,
            config.axis.system_id,
            config.secret,
            timeout=config.axis.timeout_seconds,
            max_answer_bytes=answer_limit(config.limits.max_bytes),
        )
        self.log = local.log
        self.names = local.names
        self.link = AxisLink(self.client, config.retry, probe_seconds=config.axis.timeout_seconds + 1, log=self.log)
        self.breaker = self.link.breaker
        self.intakes = [Intake(local, agency) for agency in local.agencies.values()]
        self.revocation = trusting.revocation(config, self.log)
        self.pdfs = PdfChecks(signing.pdf_signatures, self.trust, self.revocation, self.log)
        self.deliverer = Deliverer(local, self.link, self.receiver, self.revocation, self.pdfs)
        self.registration = Registration(local, self.client, self.link)
        self.sender = Sender(local, self.client, self.link, self.registration, self._note_time)
        self._meta_written: dict[str, float] = {}
        self._not_hosted_said: set[str] = set()  # listed deliveries for agencies not hosted, said once
        self._not_hosted_listed = {kind: False for kind in MessageType}
        self._unusable_said = {kind: () for kind in MessageType}  # what a list left out, said when it changes
        self._refreshing = asyncio.Lock()
        self._directory_digest: str | None = None  # what our axis named the directory read last by
        self._read: dict[str, str] = {}  # that directory, as read (self.names adds our own agencies)

    @property
    def wake(self) -> Callable[[str], None]:
        """Run a worker now instead of at its next tick: set by the runner, a no-op in commands."""
        return self.outgoing.wake

    @wake.setter
    def wake(self, wake: Callable[[str], None]) -> None:
        self.local.set_wake(wake)

    async def close(self) -> None:
        await self.client.close()
        await self.revocation.close()
        # the runner closes after the worker threads are done (or gave up on them): no PDF is
        # being read any more, and the default executor is already shut down
        self.pdfs.close()
        self.store.close()

    def _note_time(self, key: str) -> None:
        """last_poll / last_push for `health`, written at most every META_EVERY seconds: health
        looks for gaps of minutes, and a write per call would be a commit per document."""
        now = time.time()
        if now - self._meta_written.get(key, 0.0) >= META_EVERY:
            self.store.set_meta(key, str(now))
            self._meta_written[key] = now

    async def intake(self) -> None:
        """Every hosted agency's drop folder; only those that may hold something are read."""
        looked = await asyncio.to_thread(lambda: [worker.look() for worker in self.intakes])
        for worker, found in zip(self.intakes, looked, strict=True):
            await worker.run(found)

    # --- push and respond -----------------------------------------------------------------------

    async def push(self) -> None:
        await self.sender.send_due(MessageType.EDOC)

    async def respond(self) -> None:
        await self.sender.send_due(MessageType.STATUS)

    # --- poll -----------------------------------------------------------------------------------

    async def poll(self) -> None:
        """One plain look at both lists."""
        for message_type in MessageType:
            if await self.look(message_type) is None:
                return

    async def listen(self, message_type: MessageType, stopping: asyncio.Event) -> None:
        """Keep asking for one kind of message until ``stopping``: long-polls when the axis
        announced them and [poll] long_poll allows, plain looks every [poll] interval otherwise."""
        poll = self.config.poll
        while not stopping.is_set():
            # While the axis is failing, one call at a time probes it (AxisBreaker): a long-poll
            # would hold that probe for its whole wait and keep every other worker waiting.
            waited = bool(poll.long_poll and self.client.long_poll_max and not self.breaker.failures)
            fetched = self.deliverer.fetched[message_type]
            fetched.clear()
            try:
                new = await self.look(message_type, wait=poll.long_poll_seconds if waited else 0.0)
            except sqlite3.OperationalError as exc:  # as the runner does for workers: log, go on
                self.log.error("database_error", worker=f"listen-{message_type}", code="DB700", reason=str(exc))
                new = None
            except Exception:
                self.log.exception("worker_error", worker=f"listen-{message_type}")
                new = None
            if new is None or not waited:
                pause = poll.interval
            elif new == 0 and (self._not_hosted_listed[message_type] or self._unusable_said[message_type]):
                # what waits at the axis is for an agency no longer hosted, or has a docId we
                # cannot use: the axis answers each long-poll at once while it is there, so ask
                # no more often than a plain poll
                pause = poll.interval
            elif new == 0:
                # The axis answers a long-poll at once while anything is unfetched, so an answer
                # holding only what deliver has in hand comes back until deliver fetches it. Wait
                # until deliver has been through its round (tens of ms for one message), not a
                # fixed pause that a document arriving meanwhile would wait out; asking after
                # each single fetch instead made a burst cost one full list per message. The cap
                # covers a fetch that keeps failing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fetched.wait(), min(poll.interval, 0.5))
                continue
            else:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), pause)

    async def look(self, message_type: str, *, wait: float = 0.0) -> int | None:
        """List one kind of message once; the number of new ones, None when there was no answer.

        Each list names everything the axis holds for us that is not acknowledged; what we
        already know is skipped, unless we acknowledged it (the acknowledgement was lost).
        """
        if self.breaker.paused():
            return None
        asked = time.monotonic()
        try:
            listed = await self.client.received_list(message_type, wait=wait, inline=True)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return None
        except AxisError as exc:
            self.breaker.up()
            self.log.error("poll_refused", reason=str(exc))
            return None
        self.breaker.up()
        new = 0
        self._not_hosted_listed[MessageType(message_type)] = False
        if listed.unusable != self._unusable_said[MessageType(message_type)]:
            self._unusable_said[MessageType(message_type)] = listed.unusable
            if listed.unusable:
                self.log.warning(
                    "listed_unusable", kind=message_type, count=len(listed.unusable), first=listed.unusable[0]
                )
        for item in listed:
            accepted_at = accepted_time(item.created_time)
            agency = self.local.receiving(item.to_code)
            if agency is None:
                self._not_hosted(item, message_type)
                continue
            if self.store.incoming.note_listed(
                item.doc_id, message_type, item.from_code, accepted_at, to_code=agency.code
            ):
                new += 1
                agency.log.info("message_listed", axis_doc_id=item.doc_id, peer=item.from_code, kind=message_type)
                self.deliverer.carried.keep(item)
                continue
            known = self.store.incoming.get(item.doc_id)
            if known is not None and known.state == IncomingState.LISTED:
                # listed before and not delivered yet: a list after a full one may carry it now
                self.deliverer.carried.keep(item)
                continue
            if known is None or not known.acked:
                continue
            if not self.deliverer.acknowledgements.answered_after(item.doc_id, asked):  # else it crossed our list
                self.store.incoming.forget_acknowledgement(item.doc_id)
        self._note_time("last_poll")
        if new:
            self.wake("deliver")
        return new

    def _not_hosted(self, item: Listed, message_type: str) -> None:
        """A delivery for an agency this installation does not host (any more): left at the
        axis, never acknowledged (nor fetched, unless our axis carried it in the list: it is
        dropped); said once per delivery."""
        self._not_hosted_listed[MessageType(message_type)] = True
        if item.doc_id in self._not_hosted_said:
            return
        self._not_hosted_said.add(item.doc_id)
        self.log.warning(
            "delivery_not_hosted",
            to=item.to_code,
            axis_doc_id=item.doc_id,
            peer=item.from_code,
            kind=message_type,
            hint="left at the axis: host the agency again ([[hosted]]) to receive it, or ask the axis operator"
            " to move or delete the agency",
        )

    async def deliver(self) -> None:
        await self.deliverer.run()

    # --- retry and housekeeping -----------------------------------------------------------------

    async def retry(self) -> None:
        for item in self.store.outgoing.overdue(excluding=self.registration.waiting):
            self.store.outgoing.fail(item.id, f"not accepted by the axis within {self.config.retry.deadline_hours} h")
            self.local.log_of(item.from_code).error(  # a hosted agency's failure under its own name
                "message_failed", document_id=item.document_id, peer=list(item.to_codes), reason="deadline passed"
            )
        # what deliver holds, it acknowledges itself; send asks the breaker before each call
        acknowledgements = self.deliverer.acknowledgements
        rows = self.store.incoming.unacknowledged(BATCH)
        waiting = [row.axis_doc_id for row in rows if not acknowledgements.held(row.axis_doc_id)]
        if waiting:
            await acknowledgements.send(waiting)
        if self.registration.due():
            self.wake("directory")

    async def housekeeping(self) -> None:
        for agency in self.local.agencies.values():
            warn_of_certificate_expiry(self.store, agency, own=agency.code == self.code)
        await self.revocation.refresh()
        self.pdfs.inspector.stop_if_idle(PDF_CHILD_IDLE_SECONDS)
        removed = await asyncio.to_thread(self._tidy)
        if removed:
            self.log.info("housekeeping_tidied", removed=removed)

    async def refresh_directory(self) -> None:
        """The axis's agency directory (names for intake), and every hosted agency registered in it."""
        if self.breaker.paused() or self._refreshing.locked():
            return
        async with self._refreshing:
            await self._refresh_directory()

    async def _refresh_directory(self) -> None:
        listed: set[str] | None = None
        try:
            agencies, digest = await self.client.agencies_since(self._directory_digest)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return
        except AxisError as exc:
            self.breaker.up()
            self.log.warning("directory_not_refreshed", reason=str(exc))
        else:
            self.breaker.up()
            if agencies is not None:  # None: our axis says it is the one read last
                self._read = directory.names_of(agencies)
                self.names = dict(self._read)
                self.local.names = self.names  # what intake composes documents with
            # stored again if `send` (another process) stored an older one meanwhile; the digest
            # is kept only once the directory it names is
            self.local.names_at = directory.remember(self.store, self._read)
            self._directory_digest = digest
            self.wake("intake")  # entries held for a recipient the last directory lacked
            listed = set(self._read)
        released = await self.registration.register(listed)
        if released:  # their deadline runs from now: they waited for the axis, not for us
            self.store.outgoing.renew_deadlines(released, self.config.retry.deadline_hours * 3600)
            self.wake("push")
            self.wake("respond")
        for agency in self.local.agencies.values():  # what the axis now has, addressable at once
            if agency.code not in self.registration.waiting:
                self.names.setdefault(agency.code, agency.me.organ_name or agency.code)

    def tidy_after_crash(self) -> int:
        """Half-written inbox folders a crash left, removed at start before any worker runs: while
        they run, a .tmp- folder is a delivery being written (removing one emptied the delivered folder)."""
        removed = 0
        for agency in self.local.agencies.values():
            try:
                removed += inbox.remove_temporary(agency.inbox)
            except OSError as exc:  # the inbox is looked at again by deliver, which says what is wrong
                agency.log.warning("inbox_leftovers_not_removed", inbox=str(agency.inbox), reason=str(exc))
        return removed

    def _tidy(self) -> int:
        """Outgoing files no row names (a crash between write and commit)."""
        removed = 0
        known = self.store.outgoing.known_files()
        # A file is being written or waits for its commit (here or in a `send` process) for
        # seconds at most; an hour-old one nobody names is a crash's leftover.
        cutoff = time.time() - 3600
        for path in self.store.outgoing_dir.iterdir():
            try:
                if path.name not in known and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
