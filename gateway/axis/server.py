"""The axis mock's HTTP server (aiohttp): the VXP calls of facts §5.1 over the store.

Every request is authenticated before its body is read. sendEdoc streams the body to a
file under ``incoming/``, checks hash-file, validates the message (lenient schema,
structure, optionally the signature), checks that the sender is one of the caller's
agencies and that every recipient exists, appends the axis's TraceHeader, writes the
relayed copy, and only then commits the document and its deliveries and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from gateway import edxml, logs
from gateway.axis.answering import edoc_answer, whole_or_open
from gateway.axis.config import AxisConfig
from gateway.axis.directory import Directory
from gateway.axis.store import AxisStore, Delivery
from gateway.axis.upload import Upload, UploadDigests
from gateway.axis.wire import Checked, Refusal, listed, new_document, sent
from gateway.edxml import Limits, append_trace_header, parse_lifted, serialize
from gateway.errors import GatewayError, MalformedXML, SignatureError
from gateway.fsutil import write_atomic
from gateway.vxp.answers import AxisCode, fail, ok
from gateway.vxp.protocol import LONG_POLL_HEADER, VIETNAM, AuthError, SignedRequest, hash_file_matches, verify_request

LIST_LIMIT = 100  # oldest first; what is not on this page is on the next look
LARGE_UPLOAD_BYTES = 16 * 1024 * 1024  # uploads this large are checked one at a time
IN_MEMORY_UPLOAD_BYTES = 1024 * 1024  # a sendEdoc body up to this size is read whole, not streamed to a file
# Long-poll, our extension of getReceivedEdocList: a signed ``wait`` parameter (seconds) makes
# the call answer as soon as something arrives for the caller, or with an empty list when the
# wait is over. Every answer announces it in this header, so a gateway uses ``wait`` only
# with an axis that said it understands it; the national axis does not, and gets plain polls.
LONG_POLL_MAX_SECONDS = 30
CHUNK = 256 * 1024
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
        self.limits = Limits(max_bytes=config.max_body_bytes, max_attachment_bytes=config.max_body_bytes)
        self.log = logs.get("axis")
        self._warned_legacy: set[str] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}  # agency code → long-polls waiting for it
        self._closing = False
        self.directory = Directory(store, self.log)
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
        return app

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
            response = await handler(request, signed)
            if self.config.long_poll:
                response.headers[LONG_POLL_HEADER] = str(LONG_POLL_MAX_SECONDS)
            return response
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

    def _own(self, signed: SignedRequest) -> frozenset[str]:
        return self.store.agencies_of(signed.system_id)

    def _message_type(self, signed: SignedRequest, default: str = "edoc") -> str:
        value = (signed.get("messagetype") or default).strip().lower()
        if value not in ("edoc", "status"):
            raise Refusal(AxisCode.BAD_REQUEST, f"messagetype must be edoc or status, not {value!r}")
        return value

    # --- sendEdoc -----------------------------------------------------------------------------

    async def send_edoc(self, request: web.Request, signed: SignedRequest) -> web.Response:
        message_type = self._message_type(signed, default="")
        claimed = signed.get("hash-file")
        if not claimed:
            raise Refusal(AxisCode.BAD_REQUEST, "hash-file is missing")
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit + 2:
            raise Refusal(AxisCode.TOO_LARGE, f"{request.content_length} bytes, the limit is {limit}")
        upload = await self._receive(request, limit)
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
                checked = await asyncio.to_thread(self._check, upload.source, message_type, submitted.hex())
                return await self._accept(signed, checked, message_type)
        finally:
            upload.discard()

    async def _receive(self, request: web.Request, limit: int) -> Upload:
        length = request.content_length
        if length is not None and length <= IN_MEMORY_UPLOAD_BYTES:
            # The usual document: read whole, no file to open and write on the event loop.
            try:
                data = await request.content.readexactly(length)
            except asyncio.IncompleteReadError:
                raise Refusal(AxisCode.BAD_REQUEST, f"the body ended before its {length} bytes") from None
            digests = UploadDigests()
            digests.update(data)
            return Upload(data, *digests.result(), length)
        fd_path = self.store.incoming_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{id(request):x}.part"
        digests = UploadDigests()
        size = 0
        with fd_path.open("wb") as handle:
            try:
                async for chunk in request.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > limit + 2:
                        raise Refusal(AxisCode.TOO_LARGE, f"more than {limit} bytes")
                    digests.update(chunk)
                    handle.write(chunk)
            except Refusal:
                handle.close()
                fd_path.unlink(missing_ok=True)
                raise
        return Upload(fd_path, *digests.result(), size)

    def _check(self, source: Path | bytes, message_type: str, submitted_sha256: str) -> Checked:
        """In a worker thread: everything about the file that needs no database."""
        data = source.read_bytes() if isinstance(source, Path) else source
        try:
            root, lifted = parse_lifted(data, self.limits)
            checked = edxml.validate_root(
                root,
                lifted=lifted,
                trust=self.trust,
                limits=self.limits,
                require_signature=self.config.verify_signatures,
                check_signature=self.config.verify_signatures,
                allow_sha1=self.config.allow_sha1,
            )
        except MalformedXML as exc:
            raise Refusal(AxisCode.INVALID_FILE, str(exc)) from None
        except (GatewayError, SignatureError) as exc:
            code = AxisCode.TOO_LARGE if exc.code == "EDX103" else AxisCode.NOT_EDXML
            raise Refusal(code, str(exc)) from None
        kind = "status" if isinstance(checked.message, edxml.StatusMessage) else "edoc"
        if kind != message_type:
            raise Refusal(AxisCode.BAD_REQUEST, f"messagetype says {message_type}, the file is a {kind}")
        if kind == "edoc":
            append_trace_header(root, self.config.code, datetime.now(VIETNAM).replace(tzinfo=None))
            relayed = tuple(lifted.expand(serialize(root)))
        else:
            relayed = (data,)
        digest = hashlib.sha256()
        for piece in relayed:
            digest.update(piece)
        size = sum(len(piece) for piece in relayed)
        return Checked(checked.message, relayed, digest.hexdigest(), size, submitted_sha256)

    async def _accept(self, signed: SignedRequest, checked: Checked, message_type: str) -> web.Response:
        message = checked.message
        sender = message.sender.organ_id.text
        if sender not in self._own(signed):
            raise Refusal(AxisCode.SENDER_NOT_ALLOWED, f"{sender} is not an agency of system {signed.system_id}")
        recipients = _recipients(message)
        for code in recipients:
            agency = self.store.agency(code)
            if agency is None:
                raise Refusal(AxisCode.UNKNOWN_RECIPIENT, code)
            if agency.locked:
                raise Refusal(AxisCode.RECIPIENT_LOCKED, code)
        document = new_document(signed.system_id, message, message_type, recipients, checked)
        duplicate = self.store.find_duplicate(document.dedup_key)
        if duplicate is None:
            sender_doc_id, path = self.store.new_document_path()
            await asyncio.to_thread(write_atomic, path, checked.relayed)
            try:
                doc_ids = self.store.record_document(sender_doc_id, document)
            except sqlite3.IntegrityError:
                path.unlink(missing_ok=True)  # the same document won a race with this one
                duplicate = self.store.find_duplicate(document.dedup_key)
                if duplicate is None:
                    raise
            else:
                self._arrived(document.recipients)
                self.log.info(
                    "document_accepted",
                    axis_doc_id=sender_doc_id,
                    agency=sender,
                    peer=list(recipients),
                    system=signed.system_id,
                    message_type=message_type,
                    deliveries=doc_ids,
                    document_id=document.document_id,
                    bytes=document.size,
                )
                return web.json_response(ok(DocId=sender_doc_id))
        sender_doc_id, earlier_recipients = duplicate
        if tuple(sorted(recipients)) != earlier_recipients:
            raise Refusal(AxisCode.BAD_REQUEST, "this DocumentId was already sent to other recipients")
        self.log.info(
            "document_duplicate",
            axis_doc_id=sender_doc_id,
            agency=sender,
            peer=list(recipients),
            system=signed.system_id,
            message_type=message_type,
        )
        return web.json_response(ok(DocId=sender_doc_id))

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
        targets, message_type, wait = self._targets(signed), self._message_type(signed), self._wait(signed)
        deadline = asyncio.get_running_loop().time() + wait
        arrived = asyncio.Event()
        for code in targets:  # registered before the first look, so no arrival falls in between
            self._waiters.setdefault(code, set()).add(arrived)
        try:
            # A long-poll answers when something was never fetched: what the caller already
            # fetched and not yet acknowledged is work in its hands, not news.
            while wait and not self._closing and not self.store.has_unfetched(targets, message_type):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), left)
            deliveries = self.store.listable(targets, message_type, LIST_LIMIT)
        finally:
            for code in targets:
                waiting = self._waiters.get(code)
                if waiting is not None:
                    waiting.discard(arrived)
                    if not waiting:
                        del self._waiters[code]
        return web.json_response(ok(data=[listed(d) for d in deliveries]))

    def _wait(self, signed: SignedRequest) -> float:
        if signed.get("wait") is not None and not self.config.long_poll:
            raise Refusal(AxisCode.BAD_REQUEST, "wait: this axis does not long-poll")
        text = (signed.get("wait") or "0").strip()
        try:
            seconds = float(text)
        except ValueError:
            raise Refusal(AxisCode.BAD_REQUEST, f"wait must be a number of seconds, not {text!r}") from None
        if not 0 <= seconds <= LONG_POLL_MAX_SECONDS:  # NaN fails both
            raise Refusal(AxisCode.BAD_REQUEST, f"wait must be 0 to {LONG_POLL_MAX_SECONDS} seconds, not {text}")
        return seconds

    def _arrived(self, codes: tuple[str, ...] | list[str]) -> None:
        """Wake the long-polls of the recipients of a new delivery."""
        for code in codes:
            for waiter in self._waiters.get(code, ()):
                waiter.set()

    def close(self) -> None:
        """Answer every waiting long-poll now (shutdown)."""
        self._closing = True
        for waiting in self._waiters.values():
            for waiter in waiting:
                waiter.set()

    async def count_edoc(self, request: web.Request, signed: SignedRequest) -> web.Response:
        return web.json_response(ok(count=self.store.count_listable(self._targets(signed), "edoc")))

    async def count_status(self, request: web.Request, signed: SignedRequest) -> web.Response:
        return web.json_response(ok(count=self.store.count_listable(self._targets(signed), "status")))

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
        stored = await asyncio.to_thread(whole_or_open, self.store.document_file(delivery))
        try:
            self.store.mark_fetched(delivery.doc_id)
        except BaseException:
            if not isinstance(stored, bytes):
                stored.close()
            raise
        self.log.info(
            "delivery_fetched",
            axis_doc_id=delivery.doc_id,
            agency=delivery.to_code,
            peer=delivery.from_code,
            system=signed.system_id,
            message_type=delivery.message_type,
        )
        long_poll = str(LONG_POLL_MAX_SECONDS) if self.config.long_poll else None
        return await edoc_answer(request, stored, delivery.doc_id, long_poll=long_poll, log=self.log)

    async def update_status(self, request: web.Request, signed: SignedRequest) -> web.Response:
        delivery = self._delivery(signed)
        state = (signed.get("status") or "").strip().lower()
        if state not in ("done", "fail", "processing"):
            raise Refusal(AxisCode.BAD_REQUEST, f"status must be done, fail or processing, not {state!r}")
        self.store.set_state(delivery.doc_id, state, self.config.fail_retry_seconds)
        self.log.info(
            "delivery_state",
            axis_doc_id=delivery.doc_id,
            agency=delivery.to_code,
            peer=delivery.from_code,
            system=signed.system_id,
            state=state,
        )
        return web.json_response(ok())

    async def get_sent_list(self, request: web.Request, signed: SignedRequest) -> web.Response:
        message_type = signed.get("messagetype")
        rows = self.store.sent_by(
            signed.system_id,
            message_type.strip().lower() if message_type else None,
            (signed.get("docId") or "").strip() or None,
            LIST_LIMIT,
        )
        return web.json_response(ok(data=[sent(d) for d in rows]))


def _recipients(message: edxml.Message) -> tuple[str, ...]:
    """Routing: a document goes to each To; a status to the agency it answers (ResponseFor/OrganId)."""
    if isinstance(message, edxml.Document):
        return tuple(sorted(t.organ_id.text for t in message.to))
    target = message.response_for.organ_id
    if target is None:
        raise Refusal(AxisCode.NOT_EDXML, "the status message names no ResponseFor/OrganId")
    return (target.text,)
