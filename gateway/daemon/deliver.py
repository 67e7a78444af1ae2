"""Deliver: fetch what the axis listed for us, examine it, and settle it exactly once.

A document goes into the inbox with its 01 queued in the same transaction, or is refused
into inbox/.rejected with its 02; a status is recorded with its receipt; either way the
axis is then told (updateStatus done). A crash anywhere repeats at most the part that
left no record: the inbox folder is written before the row, and found again by name.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import replace

from gateway import edxml
from gateway.daemon import compose, inbox, pdfcheck, revoking
from gateway.daemon.batching import Acknowledgements, Carried
from gateway.daemon.examine import Examined, Receiver, examine
from gateway.daemon.health import DELIVERY_FAILING
from gateway.daemon.link import AxisLink
from gateway.daemon.outgoing import Agency, Local, Pending, Written
from gateway.daemon.pdfcheck import PdfChecks
from gateway.daemon.statuses import record_status
from gateway.errors import AxisError, AxisUnavailable, GatewayError
from gateway.mounts import LocalDisks
from gateway.offload import SMALL_BYTES, LargePermit, in_place_if_small
from gateway.revocation import Revocation
from gateway.sqlite import GroupCommit
from gateway.store import Incoming, IncomingState, Settled
from gateway.vxp.protocol import accepted_moment, kept_acceptance
from gateway.vxp.vocabulary import MessageType

BATCH = 50
DELIVER_CONCURRENCY = 4


class Deliverer:
    def __init__(
        self, local: Local, link: AxisLink, receiver: Receiver, revocation: Revocation, pdfs: PdfChecks
    ) -> None:
        self.local = local
        self.link = link
        self.receiver = receiver
        self.revocation = revocation
        self.pdfs = pdfs
        self.store = local.store
        self.log = local.log
        self._delivering: set[tuple[str, str, str]] = set()  # (recipient, sender, DocumentId) being delivered now
        self._large_delivery = asyncio.Semaphore(1)  # see _deliver_one
        # the outcomes of concurrent deliveries committed together: one fsync for a round
        self.commits = GroupCommit(local.store.db)
        self._failing_since: float | None = None  # since when delivering fails (see _note_failing)
        # Set when deliver has been through what was due of that kind: what a listen waits for
        # after an answer that held nothing new (see Gateway.listen).
        self.fetched = {kind: asyncio.Event() for kind in MessageType}
        self.carried = Carried()  # messages our axis carried in its lists
        self.acknowledgements = Acknowledgements(local, link)
        self._settled: list[str] = []  # axis docIds settled in this round, to acknowledge together
        self._local_disks = LocalDisks()  # which inboxes are written on the loop: see _write_inbox

    async def run(self) -> None:
        """Fetch, check and deliver what was listed, a few at a time.

        Fetching and checking one message is mostly waiting (the axis, a worker thread, fsync),
        so DELIVER_CONCURRENCY of them overlap. Documents go before statuses, so that a recall
        listed together with its document finds it delivered. The database is still only
        touched from the event loop.
        """
        await self._acknowledge_settled()  # what a round cut short by an error left
        rows = []
        for row in self.store.incoming.due(BATCH, longest_wait=self.link.longest_wait):
            if self.local.receiving(row.to_code) is None:
                # listed for an agency removed from [[hosted]] since: nothing was done with it,
                # so it is forgotten and stays at the axis (look() says so, once)
                self.store.incoming.forget_listed(row.axis_doc_id)
                self.carried.take(row.axis_doc_id)
            else:
                rows.append(row)
        for kind in MessageType:  # in this order: documents first
            batch = [row for row in rows if row.message_type == kind]
            if not batch:
                continue
            gate = asyncio.Semaphore(DELIVER_CONCURRENCY)
            axis_gone = asyncio.Event()

            async def one(row: Incoming, gate: asyncio.Semaphore = gate, axis_gone: asyncio.Event = axis_gone) -> None:
                async with gate:
                    carried = self.carried.take(row.axis_doc_id)  # needs no axis: not the breaker's
                    if carried is None and (axis_gone.is_set() or self.link.breaker.paused()):
                        axis_gone.set()
                        return
                    if not await self._deliver_one(row, carried):
                        axis_gone.set()
                    self.carried.take(row.axis_doc_id)  # a copy a list brought meanwhile: not needed

            outcomes = await asyncio.gather(*(one(row) for row in batch), return_exceptions=True)
            await self._acknowledge_settled()
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            self.fetched[kind].set()
            if axis_gone.is_set():
                return

    async def _acknowledge_settled(self) -> None:
        settled, self._settled = self._settled, []
        if settled:
            await self.acknowledgements.send(settled)

    async def _deliver_one(self, row: Incoming, carried: bytes | None) -> bool:
        """One listed message; False when the axis could not be reached.

        Deliveries overlap, but only one large message is in memory at a time: each costs about
        twice and a third its size until it is in the inbox, and four 100 MB scans at once
        would not fit a service under MemoryMax=512M (nor fit after its restart, for ever).
        """
        permit = LargePermit(self._large_delivery)
        try:
            return await self._deliver_fetched(row, permit, carried)
        finally:
            permit.release()

    async def _deliver_fetched(self, row: Incoming, permit: LargePermit, carried: bytes | None) -> bool:
        data, reached = (carried, True) if carried is not None else await self._fetch(row, permit)
        if data is None:
            return reached
        agency = self._agency(row)
        examined: Examined | None = None
        try:  # anything raised from here on postpones this message, never the round behind it
            examined = await in_place_if_small(
                len(data),
                examine,
                data,
                listed_from=row.from_code,
                listed_as=row.message_type,
                receiver=replace(self.receiver, code=agency.code),
                accepted_at=row.accepted_at,
            )
            # Ours to acknowledge from before its outcome commits: retry, looking in between, would
            # find it settled and unacknowledged and acknowledge it too.
            self.acknowledgements.hold(row.axis_doc_id)
            # judged inside the failure handling below: a CRL cache or a PDF reader that fails
            # postpones this message like any other failure, not the whole round
            judged = await self._judge_signatures(agency, row, examined)
            if isinstance(judged, revoking.Wait):  # a CRL server's passing outage; a PDF reader that gave up
                self.acknowledgements.release(row.axis_doc_id)
                self.store.incoming.postpone(row.axis_doc_id, self.link.delay(row.attempts), judged.reason)
                return True
            examined = judged
            if isinstance(examined.message, edxml.StatusMessage):
                await self.commits.run(lambda: record_status(self.local, agency, row, examined))
            elif not await self._settle_document(agency, row, examined):
                self.acknowledgements.release(row.axis_doc_id)
                return True  # another copy of the same document is being delivered right now
        except Exception as exc:  # one bad message must not stop the queue behind it
            self.acknowledgements.release(row.axis_doc_id)
            self.store.incoming.postpone(row.axis_doc_id, self.link.delay(row.attempts), str(exc))
            level = agency.log.error if isinstance(exc, GatewayError) else agency.log.exception
            level(
                "delivery_failed",
                axis_doc_id=row.axis_doc_id,
                document_id=_document_id(examined.message if examined is not None else None),
                peer=row.from_code,
                code=getattr(exc, "code", None),
                reason=str(exc),
            )
            self._note_failing(f"{agency.code}: {exc}")
            return True
        if self.link.client.status_batch_max:
            self._settled.append(row.axis_doc_id)  # acknowledged with the rest of the round (run)
        else:  # one call each, overlapping as the deliveries do
            await self.acknowledgements.send([row.axis_doc_id])
        self._note_failing(None)
        return True

    async def _judge_signatures(self, agency: Agency, row: Incoming, examined: Examined) -> Examined | revoking.Wait:
        """Revocation, then the PDFs' signatures; what cannot be judged yet (a CRL server down, a
        PDF reader that gave up) waits until the retry deadline after the axis accepted it."""
        waited = time.time() - (kept_acceptance(row.accepted_at) or row.listed_at)
        late = waited >= self.local.config.retry.deadline_hours * 3600
        judged = await revoking.judge(self.revocation, row, examined, deadline_passed=late, log=agency.log)
        if isinstance(judged, revoking.Wait):
            return judged
        return await self.pdfs.examine(judged, accepted_moment(row.accepted_at), agency.log, deadline_passed=late)

    async def _fetch(self, row: Incoming, permit: LargePermit) -> tuple[bytes | None, bool]:
        """getEdoc: the message (None when it failed; postponed) and whether the axis answered."""
        try:
            data = await self.link.client.get_edoc(row.axis_doc_id, before_large=permit.acquire)
        except AxisUnavailable as exc:
            self.link.breaker.down(exc)
            self.store.incoming.postpone(row.axis_doc_id, self.link.delay(row.attempts), str(exc))
            return None, False
        except AxisError as exc:
            self.link.breaker.up()
            self.store.incoming.postpone(row.axis_doc_id, self.link.delay(row.attempts), str(exc))
            self.local.log_of(row.to_code).warning(
                "fetch_refused", axis_doc_id=row.axis_doc_id, peer=row.from_code, reason=str(exc)
            )
            return None, True
        self.link.breaker.up()
        return data, True

    def _agency(self, row: Incoming) -> Agency:
        agency = self.local.receiving(row.to_code)
        assert agency is not None  # run() leaves out rows of agencies not hosted
        return agency

    def _note_failing(self, error: str | None) -> None:
        """What `health` reads: since when delivering fails (an inbox gone read-only, a full disk)."""
        if error is None:
            if self._failing_since is not None:
                self._failing_since = None
                self.store.set_meta(DELIVERY_FAILING, "")
            return
        if self._failing_since is None:
            self._failing_since = time.time()
        self.store.set_meta(DELIVERY_FAILING, json.dumps({"since": self._failing_since, "error": error}))

    async def _settle_document(self, agency: Agency, row: Incoming, examined: Examined) -> bool:
        """Deliver, or reject, one document, and commit the outcome with the status it owes.

        False (nothing done, retried shortly) while another copy of the same document, from
        the same sender under another axis docId, is being delivered by a concurrent run.
        """
        document = examined.message
        if examined.refusal is None and isinstance(document, edxml.Document):
            examined = replace(examined, refusal=self._foreign_by_records(document))
        if examined.refusal is not None:
            readable = document if isinstance(document, edxml.Document) else None
            prepare = functools.partial(self._prepare_rejection, agency, row, examined, readable)
            pending, written = await self._write_inbox(agency, len(examined.data), prepare)
            reason = examined.refusal

            rejected = Settled(
                IncomingState.REJECTED,
                from_code=row.from_code,
                document_id=readable.document_id if readable else None,
                subject=readable.subject if readable else None,
                reason=reason,
            )
            await self.commits.run(
                lambda: agency.outgoing.commit(
                    written, pending, f"auto:{row.axis_doc_id}:02", settling=(row.axis_doc_id, rejected)
                )
            )
            agency.log.warning(
                "document_rejected",
                document_id=readable.document_id if readable else None,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                reason=reason,
            )
            return True
        assert isinstance(document, edxml.Document) and examined.signature is not None
        document_id = document.document_id or row.axis_doc_id
        key = (agency.code, row.from_code, document_id)
        if key in self._delivering:
            self.store.incoming.postpone(row.axis_doc_id, 1.0, "another copy of this document is being delivered")
            return False
        self._delivering.add(key)
        try:
            await self._deliver_document(agency, row, examined, document, document_id)
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
                owners = self.store.incoming.senders_of(edxml.spellings(document_id))
                if owners and sender not in owners:
                    return edxml.reference_refusal(document, document_id, ", ".join(sorted(owners)))
        return None

    async def _deliver_document(
        self, agency: Agency, row: Incoming, examined: Examined, document: edxml.Document, document_id: str
    ) -> None:
        earlier = self.store.incoming.delivered_copy(row.from_code, document_id, agency.code)
        if earlier is not None and earlier.axis_doc_id != row.axis_doc_id:
            self.store.incoming.settle(
                row.axis_doc_id,
                Settled(
                    IncomingState.DUPLICATE,
                    from_code=row.from_code,
                    document_id=document_id,
                    subject=document.subject,
                    inbox_id=earlier.inbox_id,
                ),
            )
            agency.log.warning(
                "duplicate_dropped",
                document_id=document_id,
                peer=row.from_code,
                axis_doc_id=row.axis_doc_id,
                first=earlier.axis_doc_id,
            )
            return
        inbox_id = inbox.folder_name(row.from_code, document.document_id, row.axis_doc_id)
        prepare = functools.partial(self._prepare_delivery, agency, row, examined, inbox_id)
        pending, written = await self._write_inbox(agency, len(examined.data), prepare)

        delivered = Settled(
            IncomingState.DELIVERED,
            from_code=row.from_code,
            document_id=document_id,
            subject=document.subject,
            inbox_id=inbox_id,
            paper=document.paper,
            digitized=compose.is_digitized(document),
            document_time=compose.document_time(
                document, signed_hops=examined.signature.signed_hops, default=edxml.now_vietnam()
            ),
            pdf_signed=pdfcheck.signed_validly(examined.pdf),
            answering=compose.answering_record(document, fallback_document_id=row.axis_doc_id),
        )
        await self.commits.run(
            lambda: agency.outgoing.commit(
                written, pending, f"auto:{row.axis_doc_id}:01", settling=(row.axis_doc_id, delivered)
            )
        )
        agency.log.info(
            "document_delivered",
            document_id=document_id,
            peer=row.from_code,
            axis_doc_id=row.axis_doc_id,
            inbox=str(agency.inbox / inbox_id),
            attachments=len(document.attachments),
        )

    async def _write_inbox(self, agency: Agency, size: int, prepare: Callable[[], Pending]) -> tuple[Pending, Written]:
        """``prepare`` (an inbox folder written and synced, a status signed) through the agency's
        outgoing queue: on the event loop when the inbox is on a disk of this machine and the
        message small, as the database's COMMITs are (a worker thread's hand-off costs more
        here than the writes); in a worker thread otherwise (gateway/mounts.py), and always when
        the key is on a token (never asked from the event loop: a slow token would hold it)."""
        local = self._local_disks.known(agency.inbox)
        if local is None:  # stats the inbox's path: not on the loop, it may be a hung share
            local = await asyncio.to_thread(self._local_disks.holds, agency.inbox, agency.log)
        in_place = local and agency.identity.in_memory
        return await in_place_if_small(size, agency.outgoing.prepared, prepare, limit=SMALL_BYTES if in_place else -1)

    def _prepare_delivery(self, agency: Agency, row: Incoming, examined: Examined, inbox_id: str) -> Pending:
        """The inbox folder (idempotent) and the status 01, signed by the recipient."""
        document = examined.message
        assert isinstance(document, edxml.Document) and examined.signature is not None
        arrived = compose.status_for(
            compose.answered(document, fallback_document_id=row.axis_doc_id),
            sender=agency.me,
            code=edxml.StatusCode.ARRIVED,
        )
        # first: signing can fail, and the inbox then stays clean
        pending = agency.outgoing.sign_status(arrived, answers=row.axis_doc_id)
        inbox.deliver(
            agency.inbox,
            inbox_id,
            examined.data,
            document,
            axis_doc_id=row.axis_doc_id,
            signature=examined.signature,
            pdf=examined.pdf,
            revocation=examined.revocation,
        )
        return pending

    def _prepare_rejection(
        self, agency: Agency, row: Incoming, examined: Examined, document: edxml.Document | None
    ) -> Pending:
        """The .rejected folder and the status 02 with the reason, signed by the recipient."""
        reason = examined.refusal or "refused"
        inbox.reject(
            agency.inbox,
            row.axis_doc_id,
            examined.data,
            reason,
            {"axis_doc_id": row.axis_doc_id, "from": row.from_code, "message_type": row.message_type},
        )
        refusal = compose.refusal(
            document, sender=agency.me, listed_from=row.from_code, axis_doc_id=row.axis_doc_id, reason=reason
        )
        return agency.outgoing.sign_status(refusal, answers=row.axis_doc_id)


def _document_id(message: edxml.Message | None) -> str | None:
    """The DocumentId a log line about ``message`` names: its own, or the one a status answers."""
    if isinstance(message, edxml.Document):
        return message.document_id
    if isinstance(message, edxml.StatusMessage):
        return message.response_for.document_id
    return None
