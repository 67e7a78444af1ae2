"""A VXP client written apart from gateway/, from the public description of the SDK (facts §5.2).

It reproduces the SDK's habits on purpose, to prove the axis accepts real SDK clients:
a header map whose order is not insertion order, the timestamp ``ddMMyyyy'T'HHmmss+SSSS``
in the JVM's zone (Vietnam or UTC) fixed for the life of the object, parameters of earlier
calls left in the map, the file followed by CRLF in sendEdoc's body, and hash-file in hex
without zero-padding. It uses only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import random
from datetime import datetime, timedelta, timezone

VN = timezone(timedelta(hours=7))


def sdk_time(moment: datetime) -> str:
    return moment.strftime("%d%m%YT%H%M%S") + "+" + str(moment.microsecond // 1000).zfill(4)


class SdkLikeClient:
    def __init__(self, port: int, system_id: str, secret: str, *, zone: timezone = VN, clock: datetime | None = None):
        self.port = port
        self.secret = secret
        self.map: dict[str, str] = {}
        moment = (clock or datetime.now(zone)).astimezone(zone)
        self.map["timestamp"] = sdk_time(moment)  # set once, like VnptService's constructor
        self.map["systemid"] = system_id
        self.rng = random.Random(7)

    def headers_for(self, params: dict[str, str], content_type: str) -> list[tuple[str, str]]:
        self.map.update(params)  # never cleared: stale keys travel with later calls
        self.map["Content-Type"] = content_type
        names = list(self.map)
        self.rng.shuffle(names)  # a HashMap's order is not the insertion order
        sign_header = json.dumps({f"XroadVnpt-{n}": self.map[n] for n in names}, separators=(",", ":"))
        digest = hmac.new(self.secret.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
        headers = [("Content-Type", content_type)]
        headers += [(f"XroadVnpt-{n}", self.map[n]) for n in names]
        headers += [
            ("XroadVnpt-sign-header", sign_header),
            ("XroadVnpt-sign-header-key", ";".join(names)),
            ("XroadVnpt-hash-header", digest),
            ("User-Agent", "JAVASDKAgent/1.0.0 XRoad/VPCP"),
            ("XroadVnpt-version", "3.0.201608"),
        ]
        return headers

    def post(self, call: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest("POST", f"/{call}")
            for name, value in headers:
                connection.putheader(name, value)
            if call != "sendEdoc" and body:  # Apache HttpClient, which sends every other call
                connection.putheader("Expect", "100-continue")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
            connection.send(body)
            response = connection.getresponse()
            return response.status, json.loads(response.read().decode("ascii"))
        finally:
            connection.close()

    def call(self, call: str, params: dict[str, str], body: bytes = b"{}", content_type: str = "application/json"):
        return self.post(call, self.headers_for(params, content_type), body)

    # --- what ServiceTest.java does ----------------------------------------------------------

    def send_edoc(self, data: bytes, from_code: str, message_type: str = "edoc") -> dict:
        digest = hashlib.sha256(data).digest()
        unpadded = "".join(format(b, "x") for b in digest)
        params = {"from": from_code, "servicetype": "eDoc", "messagetype": message_type, "hash-file": unpadded}
        return self.call("sendEdoc", params, data + b"\r\n", "application/octet-stream")[1]

    def received(self, message_type: str = "edoc") -> dict:
        return self.call("getReceivedEdocList", {"servicetype": "eDoc", "messagetype": message_type}, b"")[1]

    def get_edoc(self, doc_id: str) -> bytes:
        answer = self.call("getEdoc", {"docId": doc_id, "filePath": "/tmp/vxp"})[1]
        assert answer["status"] != "FAIL", answer
        return base64.b64decode(answer["data"])

    def update_status(self, doc_id: str, status: str = "done") -> dict:
        return self.call("updateStatus", {"docid": doc_id, "status": status})[1]

    def register_agency(self, code: str, name: str, parent: str) -> dict:
        """RegisterAgency as the SDK posts it: its whole JSON body, parent in ``pcode``."""
        body = {"id": code, "pcode": parent, "code": code, "name": name, "mail": "", "mobile": "", "fax": ""}
        return self.call("registerAgency", {}, json.dumps(body, ensure_ascii=False).encode())[1]
