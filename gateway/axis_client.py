"""The gateway's client of the axis: the VXP calls over aiohttp, signed as the SDK signs them.

It fixes the SDK's quirks (facts §5.2): a fresh timestamp and nonce on every request, no
parameter carried over from an earlier call, ASCII-only header values. The body of
sendEdoc is framed as the SDK frames it (the file, then CRLF) with hash-file in the SDK's
unpadded hex, the only form the real axis is known to accept.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pybase64
from multidict import CIMultiDict

from gateway.axis_reading import (
    DEFAULT_MAX_ANSWER_BYTES,
    LIST_ANSWER_MAX_BYTES,
    checked_answer,
    read_list_answer,
    read_payload_answer,
    said,
)
from gateway.errors import AxisError, AxisRefusesGateway, AxisUnavailable
from gateway.fsutil import file_sha256
from gateway.sendbody import FileBody
from gateway.vxp import extensions
from gateway.vxp.answers import AxisCode
from gateway.vxp.protocol import doc_id_problem, sdk_hex, signed_headers
from gateway.vxp.vocabulary import DeliveryState, MessageType

JSON = "application/json"
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Listed:
    """One item of getReceivedEdocList."""

    doc_id: str
    message_type: str
    from_code: str
    to_code: str
    status: str
    created_time: str
    data: bytes | None = None  # the message itself, when the axis carried it in the list


class Listing(list[Listed]):
    """getReceivedEdocList's items we can use; ``unusable`` says why each other one was left out
    (a docId that cannot be sent back or name a file), for the caller to log."""

    unusable: tuple[str, ...] = ()


class AxisClient:
    def __init__(
        self,
        url: str,
        system_id: str,
        secret: str,
        *,
        timeout: float = 60.0,
        session: aiohttp.ClientSession | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url = url.rstrip("/")
        self._clock = clock  # the time each request is signed with
        self.max_answer_bytes = max_answer_bytes
        self.system_id = system_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self._seconds = timeout
        self._session = session
        self._own_session = session is None
        # Longest wait the axis announced for a long-poll list (our axis's extension); None until
        # an answer carried the announcement, and always with an axis that does not have it.
        self.long_poll_max: float | None = None
        # Our axis's batching extensions (gateway/axis/batching.py), likewise: the largest
        # message a list may carry, and the most docIds one updateStatus may name.
        self.inline_max: int | None = None
        self.status_batch_max: int | None = None
        self.send_batch_max: int | None = None  # the most messages one sendEdoc may carry
        self.directory_digests = False  # getAgenciesList takes `known` (gateway/vxp/extensions.py)

    async def __aenter__(self) -> AxisClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # One pooled session: connections are reused across calls.
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def call(
        self,
        name: str,
        params: dict[str, str],
        body: bytes | FileBody = b"",
        content_type: str = JSON,
        *,
        wait: float = 0.0,
        stream_payload: bool = False,
        before_large: Callable[[], Awaitable[None]] | None = None,
    ) -> dict:
        """One signed call; its JSON answer, checked. ``stream_payload``: the answer's top-level
        "data" is base64 (getEdoc), decoded as it arrives and returned as a bytearray.

        A call refused for its timestamp (ErrorCode 16) is signed again and made once more: it
        may have been signed just before a step of either host's clock (an NTP correction, a
        virtual machine resumed) and checked just after it. Refused at the door, it changed
        nothing at the axis. A clock truly off is refused again, and that is raised."""
        once = functools.partial(self._call_once, name, params, body, content_type, wait, stream_payload, before_large)
        try:
            return await once()
        except AxisRefusesGateway as exc:
            if exc.axis_code != AxisCode.STALE_TIMESTAMP.wire:
                raise
        return await once()

    async def _call_once(
        self,
        name: str,
        params: dict[str, str],
        body: bytes | FileBody,
        content_type: str,
        wait: float,
        stream_payload: bool,
        before_large: Callable[[], Awaitable[None]] | None,
    ) -> dict:
        try:
            signed = signed_headers(
                params, system_id=self.system_id, secret=self._secret, content_type=content_type, now=self._clock()
            )
        except ValueError as exc:  # a value from an answer (a docId) that no request can carry
            raise AxisError(f"{name}: {exc}", where=self.url) from None
        headers = CIMultiDict(signed)
        if isinstance(body, FileBody):
            headers["Content-Length"] = str(body.size + 2)  # as the bytes would have it: not chunked
        timeout = aiohttp.ClientTimeout(total=self._seconds + wait, sock_connect=10) if wait else None
        try:
            async with self._client().post(
                f"{self.url}/{name}",
                data=body.pieces() if isinstance(body, FileBody) else body,
                headers=headers,
                timeout=timeout or self._timeout,
            ) as response:
                self._note_extensions(response.headers)
                problem = None  # why a streamed "data" is not base64
                where = self.url
                if stream_payload:  # getEdoc: a message, as large as [limits] max_bytes lets in
                    limit = self.max_answer_bytes
                    raw, streamed, problem = await read_payload_answer(name, response, limit, where, before_large)
                else:
                    limit = min(self.max_answer_bytes, LIST_ANSWER_MAX_BYTES)
                    raw, streamed = await read_list_answer(name, response, limit, where), None
                http_status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise AxisUnavailable(f"{name}: {type(exc).__name__}: {exc}", where=self.url) from None
        return checked_answer(name, raw, streamed, problem, http_status, where=self.url)

    def _note_extensions(self, headers: Mapping[str, str]) -> None:
        # Each answer says what the axis serves now: one it stops announcing (restarted without
        # it, or another axis behind the same address) is not used from the next call on.
        announced = extensions.announced(headers)
        self.long_poll_max, self.inline_max, self.status_batch_max = announced[:3]
        self.directory_digests, self.send_batch_max = announced.directory_digest, announced.send_batch_max

    # --- the calls ------------------------------------------------------------------------------

    async def send_edoc(
        self, data: bytes | Path, *, message_type: MessageType, from_code: str, to: Sequence[str] = ()
    ) -> str:
        """Send an edXML document or status message; returns the axis's DocId.

        ``data`` may be the path of the signed file: it is then hashed and sent in pieces,
        never read whole into memory (a 100 MB scan is a 133 MB message).
        """
        if isinstance(data, Path):
            digest, size = await asyncio.to_thread(file_sha256, data)
            body: bytes | FileBody = FileBody(data, size)
        else:
            digest, body = hashlib.sha256(data).digest(), data + b"\r\n"
        params = {
            "servicetype": "eDoc",
            "messagetype": MessageType(message_type).value,
            "from": from_code,
            "hash-file": sdk_hex(digest),
        }
        if to:  # the recipients to deliver to, of those the file names (a relay's outside ones)
            params["to"] = json.dumps(list(to))
        answer = await self.call("sendEdoc", params, body, OCTETS)
        doc_id = answer.get("DocId")
        if not doc_id:
            raise AxisError("sendEdoc: the answer carries no DocId", where=self.url)
        problem = doc_id_problem(doc_id)
        if problem is not None:  # it names our record of the message, and may name a file
            raise AxisError(f"sendEdoc: the answer's {problem}", where=self.url)
        return str(doc_id)

    async def send_many(
        self,
        messages: Sequence[bytes],
        *,
        message_type: MessageType,
        from_code: str,
        to: Sequence[Sequence[str]] | None = None,
    ) -> list[str | AxisError]:
        """Several small messages of one type in one sendEdoc (our axis's extension, only while
        announced): each one's DocId, or the AxisError it alone was refused with, in order.
        ``to``: for each message, the recipients to deliver to (empty: all), as send_edoc's."""
        if not self.send_batch_max or not 1 <= len(messages) <= self.send_batch_max:
            raise ValueError(f"{len(messages)} messages; this axis takes 1 to {self.send_batch_max} at a time")
        params = {"servicetype": "eDoc", "messagetype": MessageType(message_type).value, "from": from_code}
        params.update(extensions.send_batch_params(messages, to))
        answer = await self.call("sendEdoc", params, b"".join(messages), OCTETS)
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(messages):
            # what the axis took is unknown: sent again, each is answered with the DocId it has
            raise AxisUnavailable(f"sendEdoc: the answer has no result for each of {len(messages)} messages")
        return [_sent_or_refused(result) for result in results]

    async def received_list(
        self,
        message_type: MessageType = MessageType.EDOC,
        *,
        to: str | None = None,
        wait: float = 0.0,
        inline: bool = False,
    ) -> Listing:
        """What waits for us. ``wait`` > 0 asks for a long-poll, ``inline`` for the small messages
        in the list itself (Listed.data): each only of an axis that announced it in its last
        answer; otherwise the list is a plain one."""
        params = {"servicetype": "eDoc", "messagetype": MessageType(message_type).value}
        if to:
            params["to"] = to
        if wait > 0 and self.long_poll_max:
            wait = min(wait, self.long_poll_max)
            params["wait"] = f"{wait:g}"
        else:
            wait = 0.0
        if inline and self.inline_max and self.max_answer_bytes >= extensions.INLINE_ANSWER_MAX_BYTES:
            params["inline"] = str(self.inline_max)
        answer = await self.call("getReceivedEdocList", params, wait=wait)
        listing = Listing()
        unusable = []
        for item in _data_list(answer):
            problem = doc_id_problem(item.get("docId"))
            if problem is not None:  # never fetched nor acknowledged: it could not be named again
                unusable.append(problem)
                continue
            listing.append(
                Listed(
                    doc_id=str(item["docId"]),
                    message_type=str(item.get("messageType", message_type)),
                    from_code=str(item.get("from", "")).strip(),
                    to_code=str(item.get("to", "")).strip(),
                    status=str(item.get("status", "")),
                    created_time=str(item.get("created_time", "")),
                    data=extensions.carried_message(item.get("data")) if "inline" in params else None,
                )
            )
        listing.unusable = tuple(unusable)
        return listing

    async def get_edoc(
        self, doc_id: str, *, before_large: Callable[[], Awaitable[None]] | None = None
    ) -> bytes | bytearray:
        """The message; ``before_large`` is awaited before the body of an answer announced as
        LARGE_ANSWER_BYTES or more is read (a caller that keeps one large message at a time)."""
        answer = await self.call("getEdoc", {"docId": doc_id}, stream_payload=True, before_large=before_large)
        data = answer.get("data")
        if isinstance(data, bytearray):
            return data
        if not isinstance(data, str | memoryview):
            raise AxisError("getEdoc: the answer carries no data", where=self.url)
        try:
            return pybase64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise AxisError("getEdoc: data is not base64", where=self.url) from None

    async def update_status(self, doc_id: str, status: DeliveryState) -> None:
        """Tell the axis where our copy ``doc_id`` stands: processing, done, or fail (listed again)."""
        if DeliveryState(status) is DeliveryState.PENDING:
            raise ValueError("a recipient reports processing, done or fail, never pending")
        await self.call("updateStatus", {"docId": doc_id, "status": DeliveryState(status).value})

    async def update_statuses(self, doc_ids: Sequence[str], status: DeliveryState) -> set[str]:
        """update_status for up to ``status_batch_max`` docIds in one call, with an axis that
        announced it; the docIds the axis did not take (unknown to it, or not ours)."""
        if DeliveryState(status) is DeliveryState.PENDING:
            raise ValueError("a recipient reports processing, done or fail, never pending")
        if not self.status_batch_max:
            raise ValueError("this axis has not announced updateStatus with docIds")
        if not 1 <= len(doc_ids) <= self.status_batch_max:
            raise ValueError(f"{len(doc_ids)} docIds; this axis takes 1 to {self.status_batch_max} at a time")
        answer = await self.call(
            "updateStatus", {"docIds": json.dumps(list(doc_ids)), "status": DeliveryState(status).value}
        )
        failed = answer.get("failed", [])
        if not isinstance(failed, list):
            raise AxisError("updateStatus: failed is not a list", where=self.url)
        return {str(item.get("docId")) for item in failed if isinstance(item, dict)}

    async def sent_list(
        self, *, message_type: MessageType | None = None, doc_id: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"servicetype": "eDoc"}
        if message_type:
            params["messagetype"] = MessageType(message_type).value
        if doc_id:
            params["docId"] = doc_id
        return _data_list(await self.call("getSentEdocList", params))

    async def count(self, message_type: MessageType = MessageType.EDOC) -> int:
        message_type = MessageType(message_type)
        name = "countReceiveStatus" if message_type is MessageType.STATUS else "countReceiveEdoc"
        answer = await self.call(name, {"servicetype": "eDoc", "messagetype": message_type.value})
        try:
            return int(answer.get("count", 0))
        except (TypeError, ValueError):
            raise AxisError(f"{name}: count is not a number", where=self.url) from None

    async def agencies(self) -> list[dict[str, Any]]:
        return _data_list(await self.call("getAgenciesList", {}))

    async def agencies_since(self, known: str | None) -> tuple[list[dict[str, Any]] | None, str | None]:
        """The directory and the digest our axis names it by (None from an axis without them);
        (None, known) when it is still the one ``known`` names, as this axis gave it."""
        params = {extensions.DIRECTORY_KNOWN: known or extensions.NO_DIGEST} if self.directory_digests else {}
        answer = await self.call("getAgenciesList", params)
        digest = extensions.answered_digest(answer)
        if known is not None and digest == known and answer.get("unchanged") is True:
            return None, digest
        return _data_list(answer), digest

    async def register_agency(self, code: str, name: str, *, mail: str = "", parent: str = "") -> None:
        # the fields the public SDK sends (facts §5.1); ``pcode`` is the parent agency's code
        fields = {"id": code, "pcode": parent, "code": code, "name": name, "mail": mail, "mobile": "", "fax": ""}
        body = json.dumps(fields, ensure_ascii=False).encode()
        await self.call("registerAgency", {}, body)

    async def delete_agency(self, code: str) -> None:
        await self.call("deleteAgency", {"AgencyCode": code})


def _sent_or_refused(result: object) -> str | AxisError:
    if isinstance(result, dict) and isinstance(result.get("DocId"), str) and result["DocId"]:
        problem = doc_id_problem(result["DocId"])
        return result["DocId"] if problem is None else AxisError(f"sendEdoc: the answer's {problem}")
    code, reason = (result.get("ErrorCode", ""), result.get("ErrorDesc", "")) if isinstance(result, dict) else ("", "")
    return AxisError(f"sendEdoc: ErrorCode {said(code)}: {said(reason) or 'no DocId'}", axis_code=str(code)[:20])


def _data_list(answer: dict) -> list[dict[str, Any]]:
    data = answer.get("data", [])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AxisError("the answer's data is not a list of objects")
    return data
