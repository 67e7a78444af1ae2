"""The agency directory calls: getAgenciesList, registerAgency, deleteAgency."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway import edxml
from gateway.axis.bridge_store import BridgeStore
from gateway.axis.store import AxisStore
from gateway.axis.wire import Refusal, parent_code
from gateway.errors import GatewayError
from gateway.vxp import extensions
from gateway.vxp.answers import AxisCode, ok
from gateway.vxp.protocol import SignedRequest, parse_json


class Directory:
    def __init__(
        self,
        store: AxisStore,
        log: Any,
        *,
        on_registered: Callable[[str], None] = lambda system_id: None,
        digests: bool = True,
    ) -> None:
        self.store = store
        self.digests = digests  # our extension (gateway/vxp/extensions.py); off: answered as the national axis
        self.log = log
        self.on_registered = on_registered  # long-polls renewed, the upstream told
        # with an upstream: the national directory as last read, and how to have it read anew
        # when it is older than a few seconds (Bridge.fresh_directory)
        self.national: BridgeStore | None = None
        self.freshen: Callable[[], Awaitable[None]] | None = None
        # The encoded answers (the list, and "unchanged") and the versions of both directories
        # they were made from: each gateway asks every housekeeping interval, and encoding a
        # province's directory costs ~10 ms
        self._answer: tuple[tuple[int, int], str, tuple[bytes, bytes, bytes]] | None = None

    async def get_agencies(self, request: web.Request, signed: SignedRequest) -> web.Response:
        """Every agency here; with an upstream, the national directory as last read too, each
        marked by ``scope``: "local" (delivered by this axis) or "upstream" (through the bridge)."""
        if self.national is not None and self.freshen is not None:
            await self.freshen()
        versions = (self.store.agencies_version, self.national.directory_version if self.national else 0)
        if self._answer is None or self._answer[0] != versions:
            # ASCII with \u escapes, as aiohttp's json_response wrote it: an SDK client decodes it so
            data = json.dumps(self._entries())  # encoded once, ~10 ms: spliced into both answers
            digest = extensions.directory_digest(data.encode())
            plain = _answer_with(data, ok())  # as the SDK asks: nothing of ours in it
            named = _answer_with(data, ok(digest=digest))
            unchanged = json.dumps(ok(unchanged=True, digest=digest)).encode()
            self._answer = versions, digest, (plain, named, unchanged)
        _, digest, (plain, named, unchanged) = self._answer
        known = signed.get(extensions.DIRECTORY_KNOWN) if self.digests else None
        body = plain if known is None else unchanged if known == digest else named
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _entries(self) -> list[dict[str, str]]:
        agencies = self.store.agencies()
        known = {a.code for a in agencies}

        def entry(code: str, pid: str, name: str, mail: str) -> dict[str, str]:
            return {"id": code, "code": code, "pid": pid, "name": name, "mail": mail, "oldCode": ""}

        if self.national is None:
            return [entry(a.code, a.parent or parent_code(a.code, known), a.name, a.mail) for a in agencies]
        here = [a for a in agencies if a.system_id is not None]
        data = [
            {**entry(a.code, a.parent or parent_code(a.code, known), a.name, a.mail), "scope": "local"} for a in here
        ]
        listed = {a.code for a in here}
        elsewhere = [(a.code, a.pid, a.name, a.mail) for a in self.national.upstream_agencies()]
        elsewhere += [(a.code, a.parent or "", a.name, a.mail) for a in agencies if a.system_id is None]
        for code, pid, name, mail in elsewhere:
            if code not in listed:
                listed.add(code)
                data.append({**entry(code, pid, name, mail), "scope": "upstream"})
        return data

    async def register_agency(self, request: web.Request, signed: SignedRequest) -> web.Response:
        try:
            body = parse_json(await request.text())
        except (ValueError, web.HTTPRequestEntityTooLarge):
            raise Refusal(AxisCode.BAD_REQUEST, "the body must be a small JSON object") from None
        if not isinstance(body, dict):
            raise Refusal(AxisCode.BAD_REQUEST, "the body must be a JSON object")
        code, name = str(body.get("code") or "").strip(), str(body.get("name") or "").strip()
        try:
            code = edxml.AgencyCode.lenient(code).text
        except GatewayError:
            raise Refusal(AxisCode.BAD_REQUEST, f"code {code!r} is not an agency code") from None
        if not name:
            raise Refusal(AxisCode.BAD_REQUEST, "name is missing")
        parent = str(body.get("pcode") or "").strip() or None  # the SDK's field for the parent's code
        if parent is not None:
            try:
                parent = edxml.AgencyCode.lenient(parent).text
            except GatewayError:
                raise Refusal(AxisCode.BAD_REQUEST, f"pcode {parent!r} is not an agency code") from None
        existing = self.store.agency(code)
        if existing is not None and existing.system_id != signed.system_id:
            raise Refusal(AxisCode.SENDER_NOT_ALLOWED, f"{code} belongs to another system")
        if existing is None and self.national is not None and self.national.upstream_knows(code):
            # a provincial axis: a code of the national directory is somebody else's (a ministry,
            # another province); taking it here would divert what is sent to it
            raise Refusal(AxisCode.SENDER_NOT_ALLOWED, f"{code} is an agency of the national directory")
        self.store.register_agency(code, name, str(body.get("mail") or ""), signed.system_id, parent)
        self.log.info("agency_registered", agency=code, parent=parent, system=signed.system_id)
        self.on_registered(signed.system_id)
        return web.json_response(ok())

    async def delete_agency(self, request: web.Request, signed: SignedRequest) -> web.Response:
        code = (signed.get("AgencyCode") or "").strip()
        agency = self.store.agency(code)
        if agency is None or agency.system_id != signed.system_id:
            raise Refusal(AxisCode.NOT_FOUND, code)
        if agency.source == "config":
            raise Refusal(AxisCode.BAD_REQUEST, f"{code} is declared in the axis configuration")
        self.store.delete_agency(code)
        self.log.info("agency_deleted", agency=code, system=signed.system_id)
        return web.json_response(ok())


def _answer_with(data: str, fields: dict[str, Any]) -> bytes:
    """The JSON object of ``fields`` with "data" last, its value the JSON text ``data``."""
    head = json.dumps(fields)
    return f'{head[:-1]}, "data": {data}}}'.encode()
