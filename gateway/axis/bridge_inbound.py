"""What comes down a provincial axis's bridge: each message the upstream holds for one of our
agencies fetched, checked as a message sent here would be, committed with its delivery to the
local agency, and only then acknowledged upstream (`done`).

Listed again (an acknowledgement lost), a message is acknowledged again, never delivered
again; fetched and not committed, it is fetched again. The upstream's word is not taken on
trust: the listed recipient must be one the message names and an agency here, the sender
must not be one of ours, and a message without DocumentId is known by its content. What
cannot be taken is said once a run and reported `fail` upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.axis import checks
from gateway.axis.config import UPSTREAM_SYSTEM_ID
from gateway.axis.records import NewDocument
from gateway.axis.wire import Refusal, new_document
from gateway.axis_client import Listed
from gateway.errors import AxisError, AxisUnavailable
from gateway.fsutil import write_atomic
from gateway.offload import in_place_if_small
from gateway.vxp.protocol import accepted_time
from gateway.vxp.vocabulary import DeliveryState, MessageType

if TYPE_CHECKING:
    from gateway.axis.bridge import Bridge

LEFT_SAID_MAX = 10_000  # docIds left upstream that are said once, remembered at most


class Inbound:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.client = bridge.client
        self.tables = bridge.tables
        self.store = bridge.store
        self.check = bridge.check
        self.log = bridge.log
        self.arrived = bridge.arrived
        # what the upstream holds for us that we cannot take (refused, or for an agency no longer
        # here): left there unacknowledged, said once per run
        self._left_upstream: set[str] = set()
        self._unusable_said: dict[MessageType, tuple[str, ...]] = {}  # what a list left out, said when it changes

    @property
    def breaker(self) -> Any:
        return self.bridge.breaker

    def _up(self) -> None:
        self.bridge.answered()

    async def receive(self, kind: MessageType, *, wait: float = 0.0) -> int | None:
        """One list of what the upstream holds for us, each item committed here and then
        acknowledged there; how many were taken (None: no answer). What cannot be taken is
        told `fail` upstream (listed again after the upstream's retry delay, not at once)."""
        if self.breaker.paused():
            return None
        try:
            listed = await self.client.received_list(kind, wait=wait)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return None
        except AxisError as exc:
            self._up()
            self.log.error("upstream_list_refused", reason=str(exc))
            return None
        self._up()
        if listed.unusable != self._unusable_said.get(kind, ()):
            self._unusable_said[kind] = listed.unusable
            if listed.unusable:
                self.log.error("inbound_unusable", kind=kind, count=len(listed.unusable), first=listed.unusable[0])
        taken = 0
        for item in listed:
            if self.breaker.paused():
                break
            taken += await self._take(item, kind)
        return taken

    async def _take(self, item: Listed, kind: MessageType) -> bool:
        """Commit (or find committed) and acknowledge one listed item; whether it was taken now:
        False when it cannot be taken, and for one committed before (listed again, its
        acknowledgement lost or not taken), so that an upstream listing it again and again is
        not asked again at once, for ever."""
        if self.tables.inbound(item.doc_id) is not None:
            await self._acknowledge(item.doc_id)
            return False
        to_code = item.to_code.strip()
        agency = self.store.agency(to_code)
        if agency is None or agency.system_id is None:
            return await self._leave(item, f"{to_code or 'no agency'} is not an agency of this axis")
        if agency.locked:  # as a local sender is refused (ErrorCode for a locked recipient)
            return await self._leave(item, f"{to_code} is locked at this axis")
        try:
            data = await self.client.get_edoc(item.doc_id)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return False
        except AxisError as exc:
            self._up()
            return await self._leave(item, f"the upstream refused to hand it over: {exc}")
        self._up()
        refusal = await self._commit(item, kind, data, to_code)
        if refusal is not None:
            return await self._leave(item, refusal)
        await self._acknowledge(item.doc_id)
        return True

    async def _leave(self, item: Listed, reason: str) -> bool:
        """What the upstream holds for us that we cannot take: said once a run, and reported
        `fail` so that it is listed again only after the upstream's retry delay."""
        if item.doc_id not in self._left_upstream:
            if len(self._left_upstream) >= LEFT_SAID_MAX:  # an upstream making up docIds: said again, not kept
                self._left_upstream.clear()
            self._left_upstream.add(item.doc_id)
            self.log.error("inbound_refused", upstream_doc_id=item.doc_id, peer=item.from_code, reason=reason)
        with contextlib.suppress(AxisError, AxisUnavailable):
            await self.client.update_status(item.doc_id, DeliveryState.FAIL)
        return False

    async def _commit(self, item: Listed, kind: MessageType, data: bytes | bytearray, to_code: str) -> str | None:
        """Check and record what came down; why not, when it cannot be."""
        # the identity of a document without DocumentId is its content, as at the upstream
        digest = hashlib.sha256(data).hexdigest()
        try:
            checked = await in_place_if_small(len(data), self.check, data, kind, digest)
            await self.check.judge_revocation(checked, accepted_time(item.created_time))
        except Refusal as refusal:
            return refusal.detail or refusal.code.meaning
        message = checked.message
        sender = message.sender.organ_id.text
        if item.from_code.strip() and sender != item.from_code.strip():
            return f"From/OrganId {sender} differs from the upstream's sender {item.from_code}"
        routed = checks.recipients(message)
        if to_code not in routed:  # the upstream's `to` is not taken on trust
            return f"listed for {to_code}, which the message does not name"
        local_sender = self.store.agency(sender)
        if local_sender is not None and local_sender.system_id is not None:
            return f"the sender {sender} is an agency of this axis: what it sends never comes from the upstream"
        document = self._known_by_content_if_reused(
            new_document(UPSTREAM_SYSTEM_ID, message, kind, routed, checked), to_code, item.doc_id
        )
        # The database only from the event loop's thread (its connection is shared with every
        # request); the file, with its fsync, in a worker thread, before the row that names it.
        for _ in range(3):
            existing = self.store.find_duplicate(document.dedup_key)
            if existing is not None:
                sender_doc_id, added = self.tables.record_inbound(
                    item.doc_id, document, to_code, existing[0], new=False
                )
                break
            sender_doc_id, path = self.store.new_document_path()
            await asyncio.to_thread(write_atomic, path, checked.relayed)
            try:
                sender_doc_id, added = self.tables.record_inbound(
                    item.doc_id, document, to_code, sender_doc_id, new=True
                )
            except sqlite3.IntegrityError:  # the same message arrived another way meanwhile
                path.unlink(missing_ok=True)
                if self.tables.inbound(item.doc_id) is not None:
                    return None
                continue
            break
        else:
            return "it could not be recorded (the same message kept arriving another way)"
        if added:
            self.arrived([to_code])
        self.log.info(
            "inbound_committed",
            upstream_doc_id=item.doc_id,
            axis_doc_id=sender_doc_id,
            agency=to_code,
            peer=document.from_code,
            message_type=kind,
            delivered=added,
        )
        return None

    def _known_by_content_if_reused(self, document: NewDocument, to_code: str, upstream_doc_id: str) -> NewDocument:
        """A document known here under its sender and DocumentId is another recipient's copy of
        it, unless it is other content for a recipient it did not name: the sender used the
        DocumentId again for another document (our axis refuses that at sendEdoc; the upstream
        may not). Taken for the first, it would deliver the first file to an agency that file
        does not name, which refuses it, while this one is acknowledged upstream and lost. It
        is known by its content instead, as a document without DocumentId is."""
        existing = self.store.find_duplicate(document.dedup_key)
        if existing is None or to_code in existing[1] or self.store.document_sha256(existing[0]) == document.sha256:
            return document
        self.log.warning(
            "inbound_document_id_reused",
            upstream_doc_id=upstream_doc_id,
            document_id=document.document_id,
            peer=document.from_code,
            agency=to_code,
            earlier=existing[0],
        )
        return replace(document, dedup_key=f"{document.dedup_key}|{document.sha256}")

    async def _acknowledge(self, upstream_doc_id: str) -> None:
        try:
            await self.client.update_status(upstream_doc_id, DeliveryState.DONE)
        except AxisUnavailable as exc:
            self.breaker.down(exc)
            return
        except AxisError as exc:
            self._up()
            self.log.warning("inbound_ack_refused", upstream_doc_id=upstream_doc_id, reason=str(exc))
            return
        self._up()
        self.tables.acknowledged(upstream_doc_id)

    # --- directory and receipts -------------------------------------------------------------
