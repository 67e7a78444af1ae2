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
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.axis_client import AxisClient, answer_limit
from gateway.config import Config, ConfigError
from gateway.daemon import backoff, compose, inbox
from gateway.daemon.breaker import AxisBreaker
from gateway.daemon.examine import Examined, Receiver, examine
from gateway.daemon.outgoing import Local, Pending
from gateway.errors import AxisError, AxisUnavailable, GatewayError, IntakeError
from gateway.fsutil import file_sha256, write_atomic
from gateway.store import Incoming, IncomingState, Outgoing, Receipt, Settled

# ErrorCodes after which sending the same bytes again cannot succeed (docs/axis.md).
PERMANENT_AXIS_CODES = frozenset({"10", "11", "12", "18", "19", "21", "22", "23"})
BATCH = 50
META_EVERY = 15.0
DELIVER_CONCURRENCY = 4
# Intake's crash-loop guard (Gateway._count_preparation): entries this large get a marker while
# they are prepared, and are refused after the process died that many times preparing them.
PREPARING = ".preparing-"
PREPARING_MARK_BYTES = 4 * 1024 * 1024
PREPARING_ATTEMPTS = 2
# A signed file this large is sent from the disk in pieces instead of read whole first.
SEND_FROM_FILE_BYTES = 4 * 1024 * 1024


class Gateway:
    def __init__(self, config: Config) -> None:
        if config.axis is None:
            raise ConfigError("[agency] and [axis] are required to run the gateway", where=str(config.path))
        local = Local.open(config)
        self.local = local
        self.config = config
        self.code, self.me, self.identity = local.code, local.me, local.identity
        signing = config.signing
        assert signing.trust
        self.trust = edxml.TrustStore.from_pem(signing.trust.read_bytes())
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
        self.breaker = AxisBreaker(delay=self._delay, probe_seconds=config.axis.timeout_seconds + 1, log=self.log)
        self._meta_written: dict[str, float] = {}
        self._delivering: set[tuple[str, str]] = set()  # (sender, DocumentId) being delivered now
        self._large_delivery = asyncio.Semaphore(1)  # see _deliver_one
        # Set when deliver has been through what was due of that kind: what a listen waits for
        # after an answer that held nothing new (see listen).
        self._fetched = {"edoc": asyncio.Event(), "status": asyncio.Event()}
        self._intake_timer: asyncio.TimerHandle | None = None
        self._intake_wake_at: float | None = None  # wall-clock time _intake_timer is set for

    @property
    def wake(self) -> Callable[[str], None]:
        """Run a worker now instead of at its next tick: set by the runner, a no-op in commands."""
        return self.outgoing.wake

    @wake.setter
    def wake(self, wake: Callable[[str], None]) -> None:
        self.outgoing.wake = wake

    async def close(self) -> None:
        await self.client.close()
        self.store.close()

    def _note_time(self, key: str) -> None:
        """last_poll / last_push for `health`, written at most every META_EVERY seconds: health
        looks for gaps of minutes, and a write per call would be a commit per document."""
        now = time.time()
        if now - self._meta_written.get(key, 0.0) >= META_EVERY:
            self.store.set_meta(key, str(now))
            self._meta_written[key] = now

    def _delay(self, attempts: int) -> float:
        retry = self.config.retry
        return backoff.delay(attempts, initial=retry.initial_seconds, maximum=retry.max_seconds)

    @property
    def _longest_wait(self) -> float:
        return max(self.config.retry.max_seconds, self.config.retry.initial_seconds) + 60

    @property
    def _deadline(self) -> float:
        return self.config.retry.deadline_hours * 3600

    # --- intake ---------------------------------------------------------------------------------

    async def intake(self) -> None:
        entries, settles_at = await asyncio.to_thread(self._settled_entries)
        if settles_at is not None:
            self._wake_intake_at(settles_at)
        for entry in entries:
            marker = self.outbox / f"{PREPARING}{entry.name}"
            try:
                content, size = await asyncio.to_thread(_content_hash, entry)
                key = f"drop:{entry.name}:{content}"
                if self.store.outgoing_by_source(key) is None:
                    await asyncio.to_thread(self._count_preparation, entry, size, marker)
                    pending = await asyncio.to_thread(self._prepare_entry, entry, self.outgoing.next_number())
                    outgoing_id, path = await asyncio.to_thread(self.outgoing.write, pending)
                    self.outgoing.commit(outgoing_id, path, pending, key)
                # only now that the database owns it does the entry leave the drop folder: renamed
                # to a dot-name first (ignored by intake), so a crash while deleting leaves no half entry
                await asyncio.to_thread(_take_away, entry)
                self.log.info("intake_taken", entry=compose.safe_job_name(entry.name))
            except OSError as exc:  # the disk, not the document: leave the entry for the next run
                self.log.warning("intake_postponed", entry=entry.name, reason=f"{type(exc).__name__}: {exc}")
            except (GatewayError, UnicodeDecodeError, ValueError) as exc:
                reason = str(exc) if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
                await asyncio.to_thread(self._refuse_entry, entry, reason)
            finally:
                marker.unlink(missing_ok=True)  # prepared, refused or postponed: the process lived through it

    def _count_preparation(self, entry: Path, size: int, marker: Path) -> None:
        """Refuse a large entry whose preparation the process has already died in twice.

        Signing costs several times a message's size in memory; under MemoryMax a scan that
        does not fit gets the service killed, systemd starts it again, and intake would take
        the same entry again, for ever. A marker counts the attempts that did not come back;
        an entry under PREPARING_MARK_BYTES is never the cause and gets no marker.
        """
        if size < PREPARING_MARK_BYTES:
            return
        try:
            attempts = int(marker.read_text(encoding="ascii") or 0)
        except (FileNotFoundError, ValueError):
            attempts = 0
        if attempts >= PREPARING_ATTEMPTS:
            raise IntakeError(
                f"the gateway stopped {attempts} times while preparing this entry ({size} bytes), most"
                " likely out of memory: send it smaller, or lower [limits] max_bytes so that such"
                " entries are refused at once, or give the service more memory",
                where=f"{entry.name}",
            )
        marker.write_text(str(attempts + 1), encoding="ascii")  # no fsync: a lost count only means one more try

    def _prepare_entry(self, entry: Path, sequence: int) -> Pending:
        if entry.is_dir():
            job, files = _read_job(entry, self.limits)
            composed = compose.compose_document(
                job, files, sender=self.me, names=self.names, sequence=sequence, where=f"{entry.name}/document.json"
            )
            return self.outgoing.sign_document(composed)
        return self.outgoing.sign_edxml(_read_limited(entry, self.limits.max_bytes))

    def _wake_intake_at(self, moment: float) -> None:
        """Run intake again when the newest unsettled entry has settled, not at the next tick
        after that (up to one interval later)."""
        now = time.time()
        if self._intake_wake_at is not None and now < self._intake_wake_at <= moment:
            return  # a run that comes first is already set; it sets the next one
        if self._intake_timer is not None:
            self._intake_timer.cancel()
        self._intake_wake_at = moment
        self._intake_timer = asyncio.get_running_loop().call_later(max(0.0, moment - now), self.wake, "intake")

    def _settled_entries(self) -> tuple[list[Path], float | None]:
        """Entries unchanged for [intake] settle_seconds, and when the first of the others will be."""
        settle = self.config.intake.settle_seconds
        now = time.time()
        ready = []
        settles_at: float | None = None
        for entry in sorted(self.outbox.iterdir()):
            if entry.name.startswith(".") or entry.name == "failed":
                continue
            if not (entry.is_dir() or entry.name.endswith(".edxml")):
                continue
            try:
                paths = [entry, *entry.rglob("*")] if entry.is_dir() else [entry]
                newest = max(p.stat().st_mtime for p in paths)
            except FileNotFoundError:
                continue  # the writer is still moving it
            if now - newest >= settle:
                ready.append(entry)
            else:
                settles_at = newest + settle if settles_at is None else min(settles_at, newest + settle)
            if len(ready) >= BATCH:
                break
        return ready, settles_at

    def _refuse_entry(self, entry: Path, reason: str) -> None:
        failed = self.outbox / "failed"
        target = failed / entry.name
        if target.exists():
            target = failed / f"{entry.stem}.{int(time.time())}{entry.suffix}"
        try:
            entry.rename(target)
            write_atomic(failed / f"{target.name}.error.txt", (reason + "\n").encode())
        except OSError as exc:
            self.log.error("intake_refusal_not_recorded", entry=entry.name, error=str(exc))
        self.log.warning("intake_refused", entry=entry.name, reason=reason, moved_to=str(target))

    # --- push and respond -----------------------------------------------------------------------

    async def push(self) -> None:
        await self._send_due("edoc")

    async def respond(self) -> None:
        await self._send_due("status")

    async def _send_due(self, kind: str) -> None:
        for item in self.store.due_outgoing(kind, BATCH, longest_wait=self._longest_wait):
            path = self.store.outgoing_file(item)
            try:
                data = await asyncio.to_thread(_whole_or_path, path)
            except OSError as exc:  # the signed file is gone: nothing can be sent, and the queue must go on
                self.store.fail_outgoing(item.id, f"the signed file cannot be read: {exc}")
                self.log.error("message_failed", doc_id=item.document_id, peer=list(item.to_codes), reason=str(exc))
                continue
            if self.breaker.paused():  # asked right before the call it may allow (see AxisBreaker.paused)
                return
            try:
                doc_id = await self.client.send_edoc(data, message_type=kind, from_code=self.code)
            except AxisUnavailable as exc:
                self.breaker.down(exc)
                self.store.postpone_outgoing(item.id, self._delay(item.attempts), str(exc))
                return
            except AxisError as exc:
                self.breaker.up()  # a refusal is an answer: the axis is there
                self._refused_by_axis(item, exc)
                continue
            self.breaker.up()
            self.store.mark_sent(item.id, doc_id)
            self._note_time("last_push")
            self.log.info(
                "message_sent",
                doc_id=item.document_id,
                peer=list(item.to_codes),
                kind=kind,
                axis_doc_id=doc_id,
                status_code=item.status_code,
            )

    def _refused_by_axis(self, item: Outgoing, exc: AxisError) -> None:
        if exc.axis_code in PERMANENT_AXIS_CODES:
            self.store.fail_outgoing(item.id, str(exc))
            self.log.error("message_failed", doc_id=item.document_id, peer=list(item.to_codes), reason=str(exc))
        else:
            self.store.postpone_outgoing(item.id, self._delay(item.attempts), str(exc))
            self.log.warning("message_postponed", doc_id=item.document_id, peer=list(item.to_codes), reason=str(exc))

    # --- poll -----------------------------------------------------------------------------------

    async def poll(self) -> None:
        """One plain look at both lists."""
        for message_type in ("edoc", "status"):
            if await self.look(message_type) is None:
                return

    async def listen(self, message_type: str, stopping: asyncio.Event) -> None:
        """Keep asking for one kind of message until ``stopping``: long-polls when the axis
        announced them and [poll] long_poll allows, plain looks every [poll] interval otherwise."""
        poll = self.config.poll
        while not stopping.is_set():
            # While the axis is failing, one call at a time probes it (AxisBreaker): a long-poll
            # would hold that probe for its whole wait and keep every other worker waiting.
            waited = bool(poll.long_poll and self.client.long_poll_max and not self.breaker.failures)
            fetched = self._fetched[message_type]
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
        try:
            listed = await self.client.received_list(message_type, wait=wait)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return None
        except AxisError as exc:
            self.breaker.up()
            self.log.error("poll_refused", reason=str(exc))
            return None
        self.breaker.up()
        new = 0
        for item in listed:
            if self.store.note_listed(item.doc_id, message_type, item.from_code):
                new += 1
                self.log.info("message_listed", axis_doc_id=item.doc_id, peer=item.from_code, kind=message_type)
                continue
            known = self.store.incoming(item.doc_id)
            if known is not None and known.state != IncomingState.LISTED and known.acked:
                self.store.forget_acknowledgement(item.doc_id)
        self._note_time("last_poll")
        if new:
            self.wake("deliver")
        return new

    # --- deliver --------------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Fetch, check and deliver what was listed, a few at a time.

        Fetching and checking one message is mostly waiting (the axis, a worker thread, fsync),
        so DELIVER_CONCURRENCY of them overlap. Documents go before statuses, so that a recall
        listed together with its document finds it delivered. The database is still only
        touched from the event loop.
        """
        rows = self.store.due_incoming(BATCH, longest_wait=self._longest_wait)
        for kind in ("edoc", "status"):
            batch = [row for row in rows if row.message_type == kind]
            if not batch:
                continue
            gate = asyncio.Semaphore(DELIVER_CONCURRENCY)
            axis_gone = asyncio.Event()

            async def one(row: Incoming, gate: asyncio.Semaphore = gate, axis_gone: asyncio.Event = axis_gone) -> None:
                async with gate:
                    if axis_gone.is_set() or self.breaker.paused():
                        axis_gone.set()
                        return
                    if not await self._deliver_one(row):
                        axis_gone.set()

            await asyncio.gather(*(one(row) for row in batch))
            self._fetched[kind].set()
            if axis_gone.is_set():
                return

    async def _deliver_one(self, row: Incoming) -> bool:
        """One listed message; False when the axis could not be reached.

        Deliveries overlap, but only one large message is in memory at a time: each costs about
        twice and a third its size until it is in the inbox, and four 100 MB scans at once
        would not fit a service under MemoryMax=512M (nor fit after its restart, for ever).
        """
        permit = _LargePermit(self._large_delivery)
        try:
            return await self._deliver_fetched(row, permit)
        finally:
            permit.release()

    async def _deliver_fetched(self, row: Incoming, permit: _LargePermit) -> bool:
        try:
            data = await self.client.get_edoc(row.axis_doc_id, before_large=permit.acquire)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            self.store.postpone_incoming(row.axis_doc_id, self._delay(row.attempts), str(exc))
            return False
        except AxisError as exc:
            self.breaker.up()
            self.store.postpone_incoming(row.axis_doc_id, self._delay(row.attempts), str(exc))
            self.log.warning("fetch_refused", axis_doc_id=row.axis_doc_id, peer=row.from_code, reason=str(exc))
            return True
        self.breaker.up()
        examined = await asyncio.to_thread(
            examine, data, listed_from=row.from_code, listed_as=row.message_type, receiver=self.receiver
        )
        try:
            if isinstance(examined.message, edxml.StatusMessage):
                self._record_status(row, examined)
            elif not await self._settle_document(row, examined):
                return True  # another copy of the same document is being delivered right now
        except Exception as exc:  # one bad message must not stop the queue behind it
            self.store.postpone_incoming(row.axis_doc_id, self._delay(row.attempts), str(exc))
            level = self.log.error if isinstance(exc, GatewayError) else self.log.exception
            level("delivery_failed", axis_doc_id=row.axis_doc_id, peer=row.from_code, reason=str(exc))
            return True
        await self._acknowledge(row.axis_doc_id)
        return True

    async def _settle_document(self, row: Incoming, examined: Examined) -> bool:
        """Deliver, or reject, one document, and commit the outcome with the status it owes.

        False (nothing done, retried shortly) while another copy of the same document, from
        the same sender under another axis docId, is being delivered by a concurrent run.
        """
        document = examined.message
        if examined.refusal is None and isinstance(document, edxml.Document):
            examined = replace(examined, refusal=self._foreign_by_records(document))
        if examined.refusal is not None:
            readable = document if isinstance(document, edxml.Document) else None
            pending = await asyncio.to_thread(self._prepare_rejection, row, examined, readable)
            outgoing_id, path = await asyncio.to_thread(self.outgoing.write, pending)
            reason = examined.refusal

            rejected = Settled(
                IncomingState.REJECTED,
                from_code=row.from_code,
                document_id=readable.document_id if readable else None,
                subject=readable.subject if readable else None,
                reason=reason,
            )
            self.outgoing.commit(
                outgoing_id, path, pending, f"auto:{row.axis_doc_id}:02", settling=(row.axis_doc_id, rejected)
            )
            self.log.warning(
                "document_rejected",
                doc_id=readable.document_id if readable else None,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                reason=reason,
            )
            return True
        assert isinstance(document, edxml.Document) and examined.signature is not None
        document_id = document.document_id or row.axis_doc_id
        key = (row.from_code, document_id)
        if key in self._delivering:
            self.store.postpone_incoming(row.axis_doc_id, 1.0, "another copy of this document is being delivered")
            return False
        self._delivering.add(key)
        try:
            await self._deliver_document(row, examined, document, document_id)
        finally:
            self._delivering.discard(key)
        return True

    def _foreign_by_records(self, document: edxml.Document) -> str | None:
        """A revoke, update or replace of a document our records say another agency sent us.

        A DocumentId written the VPCP way names its sender and was judged by examine; an
        opaque one (a UUID) is known only by who delivered it here.
        """
        sender = document.sender.organ_id.text
        for document_id in edxml.concerned_documents(document):
            if edxml.sender_named_in(document_id) is None:
                owners = self.store.senders_of(document_id)
                if owners and sender not in owners:
                    return edxml.reference_refusal(document, document_id, ", ".join(sorted(owners)))
        return None

    async def _deliver_document(
        self, row: Incoming, examined: Examined, document: edxml.Document, document_id: str
    ) -> None:
        earlier = self.store.delivered_copy(row.from_code, document_id)
        if earlier is not None and earlier.axis_doc_id != row.axis_doc_id:
            self.store.settle(
                row.axis_doc_id,
                Settled(
                    IncomingState.DUPLICATE,
                    from_code=row.from_code,
                    document_id=document_id,
                    subject=document.subject,
                    inbox_id=earlier.inbox_id,
                ),
            )
            self.log.warning(
                "duplicate_dropped",
                doc_id=document_id,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                first=earlier.axis_doc_id,
            )
            return
        inbox_id = inbox.folder_name(row.from_code, document.document_id, row.axis_doc_id)
        pending = await asyncio.to_thread(self._prepare_delivery, row, examined, inbox_id)
        outgoing_id, path = await asyncio.to_thread(self.outgoing.write, pending)

        delivered = Settled(
            IncomingState.DELIVERED,
            from_code=row.from_code,
            document_id=document_id,
            subject=document.subject,
            inbox_id=inbox_id,
            paper=document.paper,
            digitized=compose.is_digitized(document),
            document_time=compose.document_time(
                document, signed_hops=examined.signature.signed_hops, default=compose.now_vietnam()
            ),
        )
        self.outgoing.commit(
            outgoing_id, path, pending, f"auto:{row.axis_doc_id}:01", settling=(row.axis_doc_id, delivered)
        )
        self.log.info(
            "document_delivered",
            doc_id=document_id,
            peer=row.from_code,
            axis_doc_id=row.axis_doc_id,
            inbox=str(self.inbox / inbox_id),
            attachments=len(document.attachments),
        )

    def _prepare_delivery(self, row: Incoming, examined: Examined, inbox_id: str) -> Pending:
        """Worker thread: the inbox folder (idempotent) and the signed status 01."""
        document = examined.message
        assert isinstance(document, edxml.Document) and examined.signature is not None
        arrived = compose.status_for(
            document, sender=self.me, code=edxml.StatusCode.ARRIVED, fallback_document_id=row.axis_doc_id
        )
        # first: signing can fail, and the inbox then stays clean
        pending = self.outgoing.sign_status(arrived, answers=row.axis_doc_id)
        inbox.deliver(
            self.inbox, inbox_id, examined.data, document, axis_doc_id=row.axis_doc_id, signature=examined.signature
        )
        return pending

    def _prepare_rejection(self, row: Incoming, examined: Examined, document: edxml.Document | None) -> Pending:
        """Worker thread: the .rejected folder and the signed status 02 with the reason."""
        reason = examined.refusal or "refused"
        inbox.reject(
            self.inbox,
            row.axis_doc_id,
            examined.data,
            reason,
            {"axis_doc_id": row.axis_doc_id, "from": row.from_code, "message_type": row.message_type},
        )
        if document is not None:
            refusal = compose.status_for(
                document,
                sender=self.me,
                code=edxml.StatusCode.REFUSED,
                description=reason,
                fallback_document_id=row.axis_doc_id,
            )
        else:
            refusal = compose.refusal_for_unreadable(
                sender=self.me, to_code=row.from_code, axis_doc_id=row.axis_doc_id, reason=reason
            )
        return self.outgoing.sign_status(refusal, answers=row.axis_doc_id)

    def _record_status(self, row: Incoming, examined: Examined) -> None:
        status = examined.message
        assert isinstance(status, edxml.StatusMessage)
        answered = status.response_for.document_id or ""
        reason = examined.refusal
        outgoing = None
        if reason is None and status.status_code is edxml.StatusCode.RECALL_REQUESTED:
            original = self.store.delivered_copy(row.from_code, answered)
            if (
                original is None
                or status.response_for.organ_id is None
                or status.response_for.organ_id.text != self.code
            ):
                reason = f"recall request for {answered!r}, which {row.from_code} never delivered to {self.code}"
            else:
                inbox.add_event(
                    self.inbox,
                    original.inbox_id or original.axis_doc_id,
                    f"{row.axis_doc_id}-13",
                    {
                        "status_code": "13",
                        "meaning": status.status_code.meaning,
                        "from": row.from_code,
                        "document_id": answered,
                        "description": status.description,
                        "timestamp": status.timestamp.isoformat() if status.timestamp else None,
                        "answer_with": "edxml-gateway respond --code 15 (agree) or --code 16 (refuse)",
                    },
                )
        elif reason is None:
            outgoing = self.store.sent_document(answered)
            if outgoing is None or row.from_code not in outgoing.to_codes:
                reason = (
                    f"status {status.status_code.wire} from {row.from_code} about {answered!r},"
                    " not a document we sent it"
                )
        receipt = None
        if outgoing is not None and reason is None:
            receipt = Receipt(
                outgoing_id=outgoing.id,
                from_code=row.from_code,
                status_code=status.status_code.wire,
                description=status.description,
                status_time=status.timestamp.isoformat() if status.timestamp else None,
                received_at=time.time(),
                axis_doc_id=row.axis_doc_id,
            )
        self.store.settle(
            row.axis_doc_id,
            Settled(
                IncomingState.REJECTED if reason else IncomingState.RECORDED,
                from_code=row.from_code,
                document_id=answered,
                status_code=status.status_code.wire,
                reason=reason,
            ),
            receipt=receipt,
        )
        if reason:
            self.log.warning(
                "status_rejected",
                doc_id=answered,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                status_code=status.status_code.wire,
                reason=reason,
            )
        else:
            self.log.info(
                "status_received",
                doc_id=answered,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                status_code=status.status_code.wire,
            )

    async def _acknowledge(self, axis_doc_id: str) -> None:
        try:
            await self.client.update_status(axis_doc_id, "done")
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            self.store.postpone_ack(axis_doc_id, self._delay(0))
            return
        except AxisError as exc:
            self.breaker.up()
            self.store.postpone_ack(axis_doc_id, self._delay(0))
            self.log.warning("acknowledge_refused", axis_doc_id=axis_doc_id, reason=str(exc))
            return
        self.store.mark_acked(axis_doc_id)

    # --- retry and housekeeping -----------------------------------------------------------------

    async def retry(self) -> None:
        for item in self.store.overdue_outgoing():
            self.store.fail_outgoing(item.id, f"not accepted by the axis within {self.config.retry.deadline_hours} h")
            self.log.error(
                "message_failed", doc_id=item.document_id, peer=list(item.to_codes), reason="deadline passed"
            )
        for row in self.store.unacknowledged(BATCH):
            if self.breaker.paused():
                return
            await self._acknowledge(row.axis_doc_id)

    async def housekeeping(self) -> None:
        removed = await asyncio.to_thread(self._tidy)
        if removed:
            self.log.info("housekeeping_tidied", removed=removed)
        if self.breaker.paused():
            return
        try:
            agencies = await self.client.agencies()
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return
        except AxisError as exc:
            self.breaker.up()
            self.log.warning("directory_not_refreshed", reason=str(exc))
            return
        self.breaker.up()
        self.names = {str(a.get("code")): str(a.get("name") or a.get("code")) for a in agencies if a.get("code")}
        self.store.set_meta("directory", json.dumps(self.names, ensure_ascii=False))

    def _tidy(self) -> int:
        """Half-written inbox folders and outgoing files no row names (a crash between write and commit)."""
        removed = inbox.remove_temporary(self.inbox)
        known = self.store.known_files()
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
        for path in self.outbox.glob(".taken-*"):  # an entry whose removal a crash interrupted
            _remove(path)
            removed += 1
        for marker in self.outbox.glob(f"{PREPARING}*"):  # its entry was taken away meanwhile
            if not (self.outbox / marker.name.removeprefix(PREPARING)).exists():
                marker.unlink(missing_ok=True)
                removed += 1
        return removed


# --- helpers -----------------------------------------------------------------------------------


class _LargePermit:
    """Held by a delivery from the moment its answer turns out large until it is done."""

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


def _whole_or_path(path: Path) -> bytes | Path:
    """A small file's bytes; a large file's path, for the client to send it in pieces."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size >= SEND_FROM_FILE_BYTES:
            return path
        return handle.read()


def _content_hash(entry: Path) -> tuple[str, int]:
    """The digest that keys an entry (names and contents) and its size in bytes, read in chunks:
    an entry too large to send must not be read whole just to be recognised."""
    if not entry.is_dir():
        digest, size = file_sha256(entry)
        return digest.hex(), size
    combined = hashlib.sha256()
    size = 0
    for path in sorted(p for p in entry.rglob("*") if p.is_file()):
        digest, file_size = file_sha256(path)
        combined.update(str(path.relative_to(entry)).encode())
        combined.update(digest)
        size += file_size
    return combined.hexdigest(), size


def _read_limited(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise IntakeError(
            f"{path.name} is larger than the message limit of {limit} bytes ([limits] max_bytes)", where=path.name
        )
    return path.read_bytes()


def _read_job(folder: Path, limits: edxml.Limits) -> tuple[dict[str, Any], list[compose.FileInput]]:
    """document.json and the attachment files of a job folder (listed ones, or every other file).

    Sizes are checked against [limits] before anything is read: a file too large to send must
    be refused here, not read whole into a service running under a memory limit.
    """
    try:
        job = json.loads((folder / "document.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntakeError("the job folder has no document.json", where=f"{folder.name}/") from None
    except ValueError as exc:
        raise IntakeError(f"document.json is not JSON: {exc}", where=f"{folder.name}/document.json") from None
    if not isinstance(job, dict):
        raise IntakeError("document.json must hold a JSON object", where=f"{folder.name}/document.json")
    listed = job.get("attachments")
    files: list[compose.FileInput] = []
    if listed is None:
        paths = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "document.json"]
        paths = [p for p in paths if not p.name.startswith(".")]
        _check_sizes(folder, paths, limits)
        files.extend(compose.FileInput(path.name, path.read_bytes()) for path in paths)
        return job, files
    if not isinstance(listed, list):
        raise IntakeError("must be a list", where=f"{folder.name}/document.json: attachments")
    specs = []
    for index, item in enumerate(listed):
        spec = {"file": item} if isinstance(item, str) else item
        where = f"{folder.name}/document.json: attachments[{index}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise IntakeError("must name a file", where=where)
        path = folder / spec["file"]
        if path.resolve().parent != folder.resolve() or not path.is_file():
            raise IntakeError(f"{spec['file']!r} is not a file of the job folder", where=where)
        specs.append((spec, path))
    _check_sizes(folder, [path for _, path in specs], limits)
    for spec, path in specs:
        files.append(
            compose.FileInput(
                str(spec.get("name") or path.name),
                path.read_bytes(),
                spec.get("content_type"),
                spec.get("description"),
            )
        )
    return job, files


def _check_sizes(folder: Path, paths: list[Path], limits: edxml.Limits) -> None:
    if len(paths) > limits.max_attachments:
        raise IntakeError(
            f"{len(paths)} attachments, above the limit of {limits.max_attachments} ([limits] max_attachments)",
            where=f"{folder.name}/",
        )
    total = 0
    for path in paths:
        size = path.stat().st_size
        if size > limits.max_attachment_bytes:
            raise IntakeError(
                f"{path.name} is {size} bytes, above the attachment limit of {limits.max_attachment_bytes}"
                " ([limits] max_attachment_bytes)",
                where=f"{folder.name}/{path.name}",
            )
        total += size
    encoded = 4 * -(-total // 3)  # base64 of every attachment, before the rest of the message
    if encoded > limits.max_bytes:
        raise IntakeError(
            f"the attachments come to {total} bytes, {encoded} in base64: above the message limit"
            f" of {limits.max_bytes} bytes ([limits] max_bytes)",
            where=f"{folder.name}/",
        )


def _take_away(entry: Path) -> None:
    hidden = entry.with_name(f".taken-{entry.name}")
    os.replace(entry, hidden)
    _remove(hidden)


def _remove(entry: Path) -> None:
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)
