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
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway import edxml, logs
from gateway.axis_client import AxisClient, answer_limit
from gateway.config import Config, ConfigError
from gateway.daemon import backoff, compose, inbox
from gateway.edxml.build import build_lifted, build_tree, serialize
from gateway.edxml.lift import NOT_LIFTED, Expansion
from gateway.edxml.parse import message_from_tree
from gateway.edxml.relay import append_trace_header
from gateway.edxml.schema import SchemaMode, validate_tree
from gateway.edxml.signature import sign_tree
from gateway.edxml.xmlsafe import parse_lifted
from gateway.errors import AxisError, AxisRefusesGateway, AxisUnavailable, GatewayError, IntakeError
from gateway.fsutil import file_sha256, write_atomic
from gateway.store import GatewayStore, Incoming, IncomingState, NewOutgoing, Outgoing, Receipt, Settled

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
REFUSAL_HINTS = {
    "15": "check [axis] system_id and secret_file against what the axis operator registered",
    "16": "this host's clock is too far from the axis's: check time synchronisation (NTP, timedatectl)",
}


@dataclass(frozen=True)
class Pending:
    """A signed message on its way to the outgoing queue, in the pieces it is written in (a
    large attachment's base64 is encoded piece by piece as it is written, never whole)."""

    signed: Iterable[bytes | memoryview]
    kind: str
    document_id: str
    subject: str
    to_codes: tuple[str, ...]
    status_code: str | None = None
    paper: bool = False
    digitized: bool = False
    answers: str | None = None
    document_time: str | None = None

    def record(self) -> NewOutgoing:
        return NewOutgoing(
            kind=self.kind,
            document_id=self.document_id,
            subject=self.subject,
            to_codes=self.to_codes,
            status_code=self.status_code,
            paper=self.paper,
            digitized=self.digitized,
            answers=self.answers,
            document_time=self.document_time,
        )


@dataclass(frozen=True)
class Examined:
    """What the deliver worker concluded about one fetched message (no I/O done yet)."""

    data: bytes
    message: edxml.Message | None
    signature: edxml.SignatureVerdict | None
    refusal: str | None = None


class Gateway:
    def __init__(self, config: Config) -> None:
        if config.agency is None or config.axis is None:
            raise ConfigError("[agency] and [axis] are required to run the gateway", where=str(config.path))
        self.config = config
        self.code = edxml.AgencyCode.lenient(config.agency.code).text
        self.me = edxml.Organization(edxml.AgencyCode.lenient(self.code), organ_name=config.agency.name)
        signing = config.signing
        assert signing.key and signing.cert and signing.trust
        self.identity = edxml.SigningIdentity.from_pem(signing.key.read_bytes(), signing.cert.read_bytes())
        if self.identity.agency.text != self.code:
            raise ConfigError(
                f"the certificate is for {self.identity.agency}, the agency is {self.code}",
                where=f"{config.path}: signing.cert",
            )
        self.trust = edxml.TrustStore.from_pem(signing.trust.read_bytes())
        self.limits = config.limits
        self.outbox = config.paths.outbox
        self.inbox = config.paths.inbox
        for folder in (self.outbox, self.outbox / "failed", self.inbox, self.inbox / ".rejected"):
            folder.mkdir(parents=True, exist_ok=True)
        self.store = GatewayStore(config.paths.data_dir)
        self.client = AxisClient(
            config.axis.url,
            config.axis.system_id,
            config.secret,
            timeout=config.axis.timeout_seconds,
            max_answer_bytes=answer_limit(config.limits.max_bytes),
        )
        self.log = logs.get("gateway").bind(agency=self.code)
        self.names: dict[str, str] = json.loads(self.store.meta("directory") or "{}")
        self._axis_failures = 0
        self._axis_paused_until = 0.0
        self._probe_until = 0.0
        self._meta_written: dict[str, float] = {}
        self._delivering: set[tuple[str, str]] = set()  # (sender, DocumentId) being delivered now
        self._large_delivery = asyncio.Semaphore(1)  # see _deliver_one
        # Set when deliver has been through what was due of that kind: what a listen waits for
        # after an answer that held nothing new (see listen).
        self._fetched = {"edoc": asyncio.Event(), "status": asyncio.Event()}
        self._intake_timer: asyncio.TimerHandle | None = None
        self._intake_wake_at: float | None = None  # wall-clock time _intake_timer is set for
        # Set by the runner: run a worker now instead of at its next tick (a no-op in commands).
        self.wake: Callable[[str], None] = lambda worker: None

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

    # --- a dead axis gets a bounded request rate ------------------------------------------------

    def axis_paused(self) -> bool:
        """True while the axis is resting; after a failure, only one caller at a time probes it.

        Every worker asks this right before a call to the axis, so a False answer is always
        followed by a call, whose outcome ends the probe (or it times out).
        """
        now = time.monotonic()
        if now < self._axis_paused_until:
            return True
        if self._axis_failures:
            if now < self._probe_until:
                return True
            self._probe_until = now + self.config.axis.timeout_seconds + 1 if self.config.axis else now + 31
        return False

    def _axis_down(self, error: Exception) -> None:
        self._probe_until = 0.0
        self._axis_failures += 1
        pause = self._delay(self._axis_failures - 1)
        self._axis_paused_until = time.monotonic() + pause
        if isinstance(error, AxisRefusesGateway):
            self.log.error(
                "axis_refuses_gateway",
                code=error.code,
                axis_code=error.axis_code,
                reason=str(error),
                hint=REFUSAL_HINTS.get(error.axis_code, ""),
                failures=self._axis_failures,
                pause_seconds=round(pause, 1),
            )
            return
        self.log.warning(
            "axis_unreachable", error=str(error), failures=self._axis_failures, pause_seconds=round(pause, 1)
        )

    def _axis_up(self) -> None:
        self._probe_until = 0.0
        if self._axis_failures:
            self.log.info("axis_reachable", after_failures=self._axis_failures)
        self._axis_failures = 0
        self._axis_paused_until = 0.0

    def _delay(self, attempts: int) -> float:
        retry = self.config.retry
        return backoff.delay(attempts, initial=retry.initial_seconds, maximum=retry.max_seconds)

    @property
    def _longest_wait(self) -> float:
        return max(self.config.retry.max_seconds, self.config.retry.initial_seconds) + 60

    @property
    def _deadline(self) -> float:
        return self.config.retry.deadline_hours * 3600

    # --- enqueue: everything we send passes here ------------------------------------------------
    # Three steps, so that the slow ones run in a worker thread and the database is only ever
    # used from the event loop's thread: sign (CPU), write (disk, fsync), commit (SQLite).

    def _sign(self, root: Any, mode: SchemaMode = SchemaMode.STRICT, lifted: edxml.Lifted = NOT_LIFTED) -> Expansion:
        validate_tree(root, mode)
        sign_tree(root, self.identity, lifted)
        return Expansion(lifted, serialize(root))

    def sign_document(self, composed: compose.Composed) -> Pending:
        document = composed.document
        root, lifted = build_lifted(document)
        return Pending(
            self._sign(root, SchemaMode.STRICT, lifted),
            kind="edoc",
            document_id=document.document_id or "",
            subject=document.subject,
            to_codes=tuple(t.organ_id.text for t in document.to),
            paper=composed.paper,
            digitized=composed.digitized,
            # every hop of our own document is under our signature
            document_time=compose.document_time(
                document, signed_hops=len(document.trace_headers), default=compose.now_vietnam()
            ),
        )

    def sign_edxml(self, data: bytes) -> Pending:
        """A ready edXML file from the document system: ours, given our hop, checked strictly, signed."""
        root, lifted = parse_lifted(data, self.limits)
        document = message_from_tree(root, self.limits, lifted)
        if not isinstance(document, edxml.Document):
            raise IntakeError("the drop folder takes documents; statuses are sent with `respond`")
        if document.sender.organ_id.text != self.code:
            raise IntakeError(f"From/OrganId is {document.sender.organ_id}, this gateway sends for {self.code}")
        if not document.document_id:
            raise IntakeError("the document has no DocumentId")
        stamp = compose.now_vietnam()
        append_trace_header(root, self.code, stamp)
        return Pending(
            self._sign(root, SchemaMode.STRICT, lifted),
            kind="edoc",
            document_id=document.document_id,
            subject=document.subject,
            to_codes=tuple(t.organ_id.text for t in document.to),
            paper=document.paper,
            digitized=compose.is_digitized(document),
            document_time=compose.document_time(document, signed_hops=len(document.trace_headers), default=stamp),
        )

    def sign_status(self, status: edxml.StatusMessage, *, answers: str | None) -> Pending:
        return Pending(
            # A status repeats the answered document's values (its sender's code, its DocumentId), which
            # may be of forms our strict schema does not emit; the answer must still go out.
            self._sign(build_tree(status), SchemaMode.LENIENT),
            kind="status",
            document_id=status.response_for.document_id or "",
            subject=status.description or status.status_code.meaning,
            to_codes=(status.response_for.organ_id.text,) if status.response_for.organ_id else (),
            status_code=status.status_code.wire,
            answers=answers,
        )

    def write_pending(self, pending: Pending) -> tuple[str, Path]:
        outgoing_id, path = self.store.new_outgoing_file()
        write_atomic(path, pending.signed)
        return outgoing_id, path

    def commit_pending(
        self,
        outgoing_id: str,
        path: Path,
        pending: Pending,
        source_key: str,
        settling: tuple[str, Settled] | None = None,
    ) -> Outgoing:
        """Commit the row naming the written file (and, with ``settling``, the incoming message it answers)."""
        try:
            item = self.store.queue(
                outgoing_id,
                pending.record(),
                source_key=source_key,
                deadline_seconds=self._deadline,
                settling=settling,
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if item is None:  # queued before from the same source: that one stands
            path.unlink(missing_ok=True)
            existing = self.store.outgoing_by_source(source_key)
            assert existing is not None
            return existing
        self.log.info(
            "message_queued",
            doc_id=pending.document_id,
            peer=list(pending.to_codes),
            kind=pending.kind,
            status_code=pending.status_code,
            id=item.id,
        )
        self.wake("push" if pending.kind == "edoc" else "respond")
        return item

    def enqueue(self, pending: Pending, source_key: str) -> Outgoing:
        """All three steps in the calling thread: what the commands (send, respond, recall) use."""
        existing = self.store.outgoing_by_source(source_key)
        if existing is not None:
            return existing
        outgoing_id, path = self.write_pending(pending)
        return self.commit_pending(outgoing_id, path, pending, source_key)

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
                    pending = await asyncio.to_thread(self._prepare_entry, entry, self._sequence())
                    outgoing_id, path = await asyncio.to_thread(self.write_pending, pending)
                    self.commit_pending(outgoing_id, path, pending, key)
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
            return self.sign_document(composed)
        return self.sign_edxml(_read_limited(entry, self.limits.max_bytes))

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

    def _sequence(self) -> int:
        return self.store.documents_queued() + 1

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
            if self.axis_paused():  # asked right before the call it may allow (see axis_paused)
                return
            try:
                doc_id = await self.client.send_edoc(data, message_type=kind, from_code=self.code)
            except AxisUnavailable as exc:
                self._axis_down(exc)
                self.store.postpone_outgoing(item.id, self._delay(item.attempts), str(exc))
                return
            except AxisError as exc:
                self._axis_up()  # a refusal is an answer: the axis is there
                self._refused_by_axis(item, exc)
                continue
            self._axis_up()
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
            # While the axis is failing, one call at a time probes it (axis_paused): a long-poll
            # would hold that probe for its whole wait and keep every other worker waiting.
            waited = bool(poll.long_poll and self.client.long_poll_max and not self._axis_failures)
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
        if self.axis_paused():
            return None
        try:
            listed = await self.client.received_list(message_type, wait=wait)
        except AxisUnavailable as exc:
            self._axis_down(exc)
            return None
        except AxisError as exc:
            self._axis_up()
            self.log.error("poll_refused", reason=str(exc))
            return None
        self._axis_up()
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
                    if axis_gone.is_set() or self.axis_paused():
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
            self._axis_down(exc)
            self.store.postpone_incoming(row.axis_doc_id, self._delay(row.attempts), str(exc))
            return False
        except AxisError as exc:
            self._axis_up()
            self.store.postpone_incoming(row.axis_doc_id, self._delay(row.attempts), str(exc))
            self.log.warning("fetch_refused", axis_doc_id=row.axis_doc_id, peer=row.from_code, reason=str(exc))
            return True
        self._axis_up()
        examined = await asyncio.to_thread(self._examine, data, row)
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

    def _examine(self, data: bytes, row: Incoming) -> Examined:
        """Verify one fetched message (in a worker thread: no database here)."""
        require = self.config.signing.require_signatures
        try:
            checked = edxml.validate(
                data,
                trust=self.trust,
                limits=self.limits,
                require_signature=require,
                allow_sha1=self.config.signing.allow_sha1,
            )
        except GatewayError as exc:
            try:  # keep what can be read, so the refusal can answer the sender properly
                root, lifted = parse_lifted(data, self.limits)
                message = message_from_tree(root, self.limits, lifted)
            except GatewayError:
                message = None
            return Examined(data, message, None, str(exc))
        message = checked.message
        sender = message.sender.organ_id.text
        if sender != row.from_code:
            return Examined(
                data,
                message,
                checked.signature,
                f"From/OrganId {sender} differs from the axis's sender {row.from_code}",
            )
        expected = "edoc" if isinstance(message, edxml.Document) else "status"
        if expected != row.message_type:
            return Examined(data, message, checked.signature, f"listed as {row.message_type}, the file is a {expected}")
        if isinstance(message, edxml.Document) and self.code not in {t.organ_id.text for t in message.to}:
            return Examined(data, message, checked.signature, f"the document is not addressed to {self.code}")
        if isinstance(message, edxml.Document) and (foreign := edxml.foreign_reference(message)):
            return Examined(data, message, checked.signature, foreign)
        if (
            isinstance(message, edxml.StatusMessage)
            and (message.response_for.organ_id is None or message.response_for.organ_id.text != self.code)
            and message.status_code is not edxml.StatusCode.RECALL_REQUESTED
        ):
            return Examined(data, message, checked.signature, f"the status does not answer a document of {self.code}")
        return Examined(data, message, checked.signature)

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
            outgoing_id, path = await asyncio.to_thread(self.write_pending, pending)
            reason = examined.refusal

            rejected = Settled(
                IncomingState.REJECTED,
                from_code=row.from_code,
                document_id=readable.document_id if readable else None,
                subject=readable.subject if readable else None,
                reason=reason,
            )
            self.commit_pending(
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

        A DocumentId written the VPCP way names its sender and was judged in _examine; an
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
        outgoing_id, path = await asyncio.to_thread(self.write_pending, pending)

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
        self.commit_pending(
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
        pending = self.sign_status(arrived, answers=row.axis_doc_id)  # first: it can fail, the inbox then stays clean
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
        return self.sign_status(refusal, answers=row.axis_doc_id)

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
            self._axis_down(exc)
            self.store.postpone_ack(axis_doc_id, self._delay(0))
            return
        except AxisError as exc:
            self._axis_up()
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
            if self.axis_paused():
                return
            await self._acknowledge(row.axis_doc_id)

    async def housekeeping(self) -> None:
        removed = await asyncio.to_thread(self._tidy)
        if removed:
            self.log.info("housekeeping_tidied", removed=removed)
        if self.axis_paused():
            return
        try:
            agencies = await self.client.agencies()
        except AxisUnavailable as exc:
            self._axis_down(exc)
            return
        except AxisError as exc:
            self._axis_up()
            self.log.warning("directory_not_refreshed", reason=str(exc))
            return
        self._axis_up()
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


def new_source_key(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4()}"
