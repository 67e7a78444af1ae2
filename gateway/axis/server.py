"""The axis mock's HTTP server (aiohttp): the VXP calls of facts §5.1 over the store.

Every request is authenticated before its body is read. sendEdoc streams the body to a
file under ``incoming/``, checks hash-file, validates the message (lenient schema,
structure, optionally the signature), checks that the sender is one of the caller's
agencies and that every recipient exists, appends the axis's TraceHeader, writes the
relayed copy, and only then commits the document and its deliveries and answers.
The pieces live beside it: upload.py (the body), checks.py (the message), accepting.py (what
follows the check), multisend.py (several messages in one call), longpoll.py, answering.py
(getEdoc's streamed answer), directory.py (agency calls), wire.py (shapes).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pybase64
from aiohttp import web

from gateway import edxml, logs
from gateway.axis import multisend
from gateway.axis.accepting import accept
from gateway.axis.answering import edoc_answer, stored_message
from gateway.axis.batching import (
    INLINE_MAX_BYTES,
    STATUS_BATCH_MAX,
    inline_bytes,
    inline_limit,
    parse_doc_ids,
    read_inline,
)
from gateway.axis.bridge import Bridge
from gateway.axis.checks import MessageCheck
from gateway.axis.config import AxisConfig
from gateway.axis.directory import Directory
from gateway.axis.longpoll import LONG_POLL_MAX_SECONDS, LongPolls, wait_seconds
from gateway.axis.records import Delivery
from gateway.axis.store import AxisStore
from gateway.axis.upload import receive
from gateway.axis.wire import Refusal, listed, sent
from gateway.offload import SMALL_BATCH_BYTES, in_place_if_small
from gateway.vxp.answers import AxisCode, fail, ok
from gateway.vxp.extensions import (
    DIRECTORY_DIGEST_HEADER,
    INLINE_HEADER,
    LONG_POLL_HEADER,
    MOST_MESSAGES,
    SEND_BATCH_HEADER,
    STATUS_BATCH_HEADER,
)
from gateway.vxp.protocol import AuthError, SignedRequest, hash_file_matches, verify_request
from gateway.vxp.vocabulary import DeliveryState, MessageType

LIST_LIMIT = 100  # oldest first; what is not on this page is on the next look
LARGE_UPLOAD_BYTES = 16 * 1024 * 1024  # uploads this large are checked one at a time
_AUTH_CODES = {
    "credentials": AxisCode.BAD_CREDENTIALS,
    "timestamp": AxisCode.STALE_TIMESTAMP,
    "replay": AxisCode.REPLAYED,
    "request": AxisCode.BAD_CREDENTIALS,
    "hash": AxisCode.HASH_MISMATCH,
}


class Axis:
    def __init__(self, config: AxisConfig, store: AxisStore, trust: edxml.TrustStore | None = None) -> None:
        self.config = config
        self.store = store
        self.trust = trust
        self._large_upload = asyncio.Semaphore(1)  # see send_edoc
        self.secrets = {s.id: s.secret for s in config.systems}
        self.legacy = {s.id for s in config.systems if s.legacy_sdk}
        self.window = timedelta(seconds=config.timestamp_window_seconds)
        self.check = MessageCheck(config, trust)
        self.log = logs.get("axis")
        self._warned_legacy: set[str] = set()
        self.long_polls = LongPolls()
        # Our extensions, announced in every answer (_announce); none for an axis that is to
        # behave as the national one.
        self.announcements: dict[str, str] = {}
        if config.long_poll:
            self.announcements[LONG_POLL_HEADER] = str(LONG_POLL_MAX_SECONDS)
        if config.batching:
            self.announcements[INLINE_HEADER] = str(INLINE_MAX_BYTES)
            self.announcements[STATUS_BATCH_HEADER] = str(STATUS_BATCH_MAX)
            self.announcements[DIRECTORY_DIGEST_HEADER] = "1"
            self.announcements[SEND_BATCH_HEADER] = str(MOST_MESSAGES)
        self.bridge: Bridge | None = None  # set by main when [upstream] is configured
        self.directory = Directory(store, self.log, on_registered=self._registered, digests=config.batching)
        self.handlers = {
            "sendEdoc": self.send_edoc,
            "getReceivedEdocList": self.get_received_list,
            "getEdoc": self.get_edoc,
            "updateStatus": self.update_status,
            "getSentEdocList": self.get_sent_list,
            "countReceiveEdoc": self.count_edoc,
            "countReceiveStatus": self.count_status,
            "getAgenciesList": self.directory.get_agencies,
            "registerAgency": self.directory.register_agency,
            "deleteAgency": self.directory.delete_agency,
        }

    def application(self) -> web.Application:
        # Only registerAgency reads a JSON body through aiohttp; sendEdoc streams its own.
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/{call}", self.dispatch)
        app.on_response_prepare.append(self._announce)
        return app

    async def _announce(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer, refusals and streamed ones too, says which of our extensions this axis
        serves now: a client stops using one the moment an answer no longer announces it."""
        response.headers.update(self.announcements)

    # --- the door -----------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.Response:
        call = request.match_info["call"]
        handler = self.handlers.get(call)
        if handler is None:
            return self._refuse(request, call, None, Refusal(AxisCode.BAD_REQUEST, f"unknown call {call}"))
        try:
            signed = self._authenticate(request, call)
        except AuthError as exc:
            return self._refuse(request, call, None, Refusal(_AUTH_CODES[exc.kind], exc.reason))
        except Exception as exc:  # e.g. the database: answer in the envelope, log the trace
            self.log.exception("internal_error", call=call)
            return self._refuse(request, call, None, Refusal(AxisCode.INTERNAL, type(exc).__name__))
        try:
            return await handler(request, signed)
        except Refusal as refusal:
            return self._refuse(request, call, signed, refusal)
        except Exception as exc:
            self.log.exception("internal_error", call=call, system=signed.system_id)
            return self._refuse(request, call, signed, Refusal(AxisCode.INTERNAL, type(exc).__name__))

    def _authenticate(self, request: web.Request, call: str) -> SignedRequest:
        # The window is applied below, per system: legacy SDK clients keep one timestamp for life.
        signed = verify_request(
            list(request.headers.items()), secret_of=self.secrets, now=datetime.now(UTC), window=None
        )
        system_id = signed.system_id
        if system_id in self.legacy:
            if system_id not in self._warned_legacy:
                self._warned_legacy.add(system_id)
                self.log.warning(
                    "legacy_sdk_client",
                    system=system_id,
                    detail="timestamp window and replay check are not applied to this system",
                )
            return signed
        if signed.skew > self.window:
            raise AuthError(
                "timestamp", f"timestamp {signed.timestamp} is {int(signed.skew.total_seconds())} s from now"
            )
        if not self.store.remember_request(call, signed.hash_header, 2 * self.window.total_seconds() + 60):
            raise AuthError("replay", "this signed request was already received")
        return signed

    def _refuse(self, request: web.Request, call: str, signed: SignedRequest | None, refusal: Refusal) -> web.Response:
        self.log.warning(
            "request_refused",
            call=call,
            system=signed.system_id if signed else None,
            code=refusal.code.wire,
            reason=refusal.detail or refusal.code.meaning,
            remote=request.remote,
        )
        extra = {"DocId": ""} if call == "sendEdoc" else {}
        response = web.json_response(fail(refusal.code, refusal.detail, **extra), status=refusal.code.http_status)
        if call == "sendEdoc" and not request.content.at_eof():
            response.force_close()  # do not read an unwanted body to keep the connection
        return response

    def _registered(self, system_id: str) -> None:
        """A system registered an agency here: its long-polls, waiting for the agencies it had,
        are answered so that the next waits for the new one too; the upstream hears of it at once."""
        self.long_polls.renew(self.store.agencies_of(system_id))
        if self.bridge is not None:
            self.bridge.directory_now()

    def _own(self, signed: SignedRequest) -> frozenset[str]:
        return self.store.agencies_of(signed.system_id)

    def _message_type(self, signed: SignedRequest, default: MessageType = MessageType.EDOC) -> MessageType:
        text = signed.get("messagetype") or default
        value = MessageType.from_wire(text)
        if value is None:
            raise Refusal(AxisCode.BAD_REQUEST, f"messagetype must be edoc or status, not {text!r}")
        return value

    # --- sendEdoc -----------------------------------------------------------------------------

    async def send_edoc(self, request: web.Request, signed: SignedRequest) -> web.Response:
        message_type = self._message_type(signed, default="")
        if multisend.is_batch(signed):  # our extension: several small messages in one call
            return await multisend.send_many(self, request, signed, message_type)
        claimed = signed.get("hash-file")
        if not claimed:
            raise Refusal(AxisCode.BAD_REQUEST, "hash-file is missing")
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit + 2:
            raise Refusal(AxisCode.TOO_LARGE, f"{request.content_length} bytes, the limit is {limit}")
        upload = await receive(request, limit, self.store.incoming_dir)
        try:
            if hash_file_matches(claimed, digests=[upload.digest]):
                submitted = upload.digest
            elif upload.trimmed_digest is not None and hash_file_matches(claimed, digests=[upload.trimmed_digest]):
                upload.trim()  # the SDK appends CRLF after the file; the hash covers the file only
                submitted = upload.trimmed_digest
            else:
                raise Refusal(AxisCode.HASH_MISMATCH)
            # One large message is checked and stored at a time: each holds about twice and a
            # third its size in memory until its relayed copy is written.
            gate = self._large_upload if upload.size >= LARGE_UPLOAD_BYTES else contextlib.nullcontext()
            async with gate:
                checked = await in_place_if_small(upload.size, self.check, upload.source, message_type, submitted.hex())
                (outcome,) = await accept(self, signed, [checked], message_type, [signed.get("to")])
        finally:
            upload.discard()
        if isinstance(outcome, Refusal):
            raise outcome
        return web.json_response(ok(DocId=outcome))

    # --- receiving ----------------------------------------------------------------------------

    def _targets(self, signed: SignedRequest) -> frozenset[str]:
        own = self._own(signed)
        wanted = signed.get("to")
        if wanted:
            wanted = wanted.strip()
            if wanted not in own:
                raise Refusal(AxisCode.SENDER_NOT_ALLOWED, f"{wanted} is not an agency of system {signed.system_id}")
            return frozenset({wanted})
        return own

    async def get_received_list(self, request: web.Request, signed: SignedRequest) -> web.Response:
        targets, message_type = self._targets(signed), self._message_type(signed)
        wait = wait_seconds(signed.get("wait"), long_poll=self.config.long_poll)
        inline = inline_limit(signed.get("inline"), enabled=self.config.batching)
        # A long-poll answers when something was never fetched: what the caller already
        # fetched and not yet acknowledged is work in its hands, not news.
        await self.long_polls.wait(targets, wait, lambda: self.store.has_unfetched(targets, message_type))
        if wait and (request.transport is None or request.transport.is_closing()):
            # The caller went away while it waited (a gateway stopped mid long-poll): news
            # carried in an answer nobody reads would be fetched, and the call that replaces
            # this one would wait out its whole long-poll before it listed them.
            return web.json_response(ok(data=[]))
        deliveries = self.store.listable(targets, message_type, LIST_LIMIT)
        items = [listed(d) for d in deliveries]
        # See batching.py: the small messages travel in the list, marked fetched before the
        # answer is written; an answer lost on the way leaves them listed (and fetched with
        # getEdoc), only no longer news to a long-poll.
        if inline:
            carried = await in_place_if_small(
                inline_bytes(deliveries, inline),
                read_inline,
                deliveries,
                self.store.docs_dir,
                inline,
                limit=SMALL_BATCH_BYTES,
            )
            if carried:
                self.store.mark_fetched(list(carried))
                for item, delivery in zip(items, deliveries, strict=True):
                    data = carried.get(delivery.doc_id)
                    if data is not None:
                        item["data"] = pybase64.b64encode(data).decode("ascii")
                        self._log_fetched(delivery, signed, inline=True)
        return web.json_response(ok(data=items))

    def close(self) -> None:
        """Answer every waiting long-poll now (shutdown)."""
        self.long_polls.close()

    async def count_edoc(self, request: web.Request, signed: SignedRequest) -> web.Response:
        return web.json_response(ok(count=self.store.count_listable(self._targets(signed), MessageType.EDOC)))

    async def count_status(self, request: web.Request, signed: SignedRequest) -> web.Response:
        return web.json_response(ok(count=self.store.count_listable(self._targets(signed), MessageType.STATUS)))

    def _delivery(self, signed: SignedRequest) -> Delivery:
        doc_id = (signed.get("docId") or "").strip()
        if not doc_id:
            raise Refusal(AxisCode.BAD_REQUEST, "docId is missing")
        delivery = self.store.delivery_for(doc_id, self._own(signed))
        if delivery is None:  # unknown and not-yours look the same: nothing leaks
            raise Refusal(AxisCode.NOT_FOUND, doc_id)
        return delivery

    async def get_edoc(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        delivery = self._delivery(signed)
        stored = await stored_message(self.store.document_file(delivery))
        try:
            self.store.mark_fetched([delivery.doc_id])
        except BaseException:
            if not isinstance(stored, bytes):
                stored.close()
            raise
        self._log_fetched(delivery, signed)
        return await edoc_answer(request, stored, delivery.doc_id, log=self.log)

    def _log_fetched(self, delivery: Delivery, signed: SignedRequest, *, inline: bool = False) -> None:
        facts = _delivery_facts(delivery, signed)
        self.log.info("delivery_fetched", **facts, message_type=delivery.message_type, inline=inline or None)

    async def update_status(self, request: web.Request, signed: SignedRequest) -> web.Response:
        listed_ids = signed.get("docIds")  # our batching extension: many docIds, a JSON array
        deliveries, failed = (
            self._deliveries(signed, listed_ids) if listed_ids is not None else ([self._delivery(signed)], [])
        )
        text = signed.get("status") or ""
        state = DeliveryState.reported(text)
        if state is None:
            raise Refusal(AxisCode.BAD_REQUEST, f"status must be done, fail or processing, not {text!r}")
        self.store.set_state([d.doc_id for d in deliveries], state, self.config.fail_retry_seconds)
        for delivery in deliveries:
            self.log.info("delivery_state", **_delivery_facts(delivery, signed), state=state)
        return web.json_response(ok() if listed_ids is None else ok(failed=failed))

    def _deliveries(self, signed: SignedRequest, text: str) -> tuple[list[Delivery], list[dict[str, str]]]:
        """updateStatus's ``docIds`` (batching.py): the caller's deliveries among them, and the
        rest as "failed" items (unknown and not-yours look the same, as for one docId)."""
        own = self._own(signed)
        found: list[Delivery] = []
        failed: list[dict[str, str]] = []
        for doc_id in parse_doc_ids(text, enabled=self.config.batching):
            delivery = self.store.delivery_for(doc_id, own)
            if delivery is None:
                failed.append({"docId": doc_id, "ErrorCode": AxisCode.NOT_FOUND.wire})
            else:
                found.append(delivery)
        return found, failed

    async def get_sent_list(self, request: web.Request, signed: SignedRequest) -> web.Response:
        message_type = self._message_type(signed) if signed.get("messagetype") else None
        rows = self.store.sent_by(
            signed.system_id,
            message_type,
            (signed.get("docId") or "").strip() or None,
            LIST_LIMIT,
        )
        return web.json_response(ok(data=[sent(d) for d in rows]))


def _delivery_facts(delivery: Delivery, signed: SignedRequest) -> dict[str, str]:
    """What every log line about one delivery says: which, to whom, from whom, asked by whom."""
    return {
        "axis_doc_id": delivery.doc_id,
        "agency": delivery.to_code,
        "peer": delivery.from_code,
        "system": signed.system_id,
    }
