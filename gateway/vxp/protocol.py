"""VXP request authentication as the public SDK does it (facts §5.2), for both sides.

A request carries each parameter as a header ``XroadVnpt-<name>``; the header
``XroadVnpt-sign-header`` holds the JSON text of ``{"XroadVnpt-<name>": value, ...}``,
``XroadVnpt-sign-header-key`` the bare names joined by ``;``, and
``XroadVnpt-hash-header`` the lowercase hex HMAC-SHA256 of the sign-header text under the
system's secret. The SDK's timestamp is ``ddMMyyyy'T'HHmmss+SSSS`` in its JVM's zone
(Vietnam time or UTC), the ``+SSSS`` being milliseconds, not an offset.

Nothing here touches a socket: the client builds header lists, the server checks a
header multimap; both are plain data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from gateway.edxml import VIETNAM
from gateway.edxml import parse_timestamp as parse_edxml_timestamp

PREFIX = "XroadVnpt-"
SIGN_HEADER = f"{PREFIX}sign-header"
SIGN_HEADER_KEY = f"{PREFIX}sign-header-key"
HASH_HEADER = f"{PREFIX}hash-header"
VERSION_HEADER = f"{PREFIX}version"
VERSION = "3.0.201608"
USER_AGENT = "edxml-gateway XRoad/VPCP"
# Headers with the prefix that are not parameters: the signature itself and the SDK version.
_NOT_PARAMETERS = frozenset(h.lower() for h in (SIGN_HEADER, SIGN_HEADER_KEY, HASH_HEADER, VERSION_HEADER))


def parse_json(text: str | bytes, **options: Any) -> Any:
    """json.loads for what a peer sent: JSON nested past the parser's depth ("[[[[…", a few KB)
    raises the ValueError any other malformed JSON does, not RecursionError."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_TIMESTAMP = re.compile(r"(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})", re.ASCII)


class AuthError(Exception):
    """A request that must be refused; ``reason`` says why, ``kind`` which table code applies."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "credentials", "timestamp", "replay", "request", "hash"
        self.reason = reason


def format_timestamp(moment: datetime, zone: timezone = VIETNAM) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS`` of ``moment`` on the wall clock of ``zone``."""
    local = moment.astimezone(zone)
    return local.strftime("%d%m%YT%H%M%S") + f"+{local.microsecond // 1000:04d}"


def parse_timestamp(text: str) -> datetime:
    """The naive wall-clock time a timestamp names (its zone is not in the text)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"timestamp {text!r} is not ddMMyyyyTHHmmss+SSSS")
    day, month, year, hour, minute, second, millis = (int(g) for g in match.groups())
    if millis > 999:
        raise ValueError(f"timestamp {text!r} has {millis} milliseconds")
    return datetime(year, month, day, hour, minute, second, millis * 1000)


def timestamp_skew(text: str, now: datetime) -> timedelta:
    """How far the timestamp is from ``now``, read as Vietnam time or as UTC, whichever is closer.

    The SDK writes its JVM's wall clock with no zone: Vietnam time from a JVM set to
    Asia/Ho_Chi_Minh, UTC from one left at the container default.
    """
    wall = parse_timestamp(text)
    candidates = (wall.replace(tzinfo=VIETNAM), wall.replace(tzinfo=UTC))
    return min(abs(now - candidate) for candidate in candidates)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sdk_hex(digest: bytes) -> str:
    """Hex as the SDK writes it: each byte without zero-padding (0x0a gives "a")."""
    return "".join(format(byte, "x") for byte in digest)


def hash_file_matches(claimed: str, body: bytes | None = None, *, digests: Iterable[bytes] = ()) -> bool:
    """Does ``claimed`` name the SHA-256 of the file, in the standard or the SDK's unpadded hex?"""
    claimed = claimed.strip().lower()
    candidates = list(digests)
    if body is not None:
        candidates.append(hashlib.sha256(body).digest())
    return any(
        hmac.compare_digest(claimed, digest.hex()) or hmac.compare_digest(claimed, sdk_hex(digest))
        for digest in candidates
    )


def hmac_hex(secret: str, sign_header: str) -> str:
    return hmac.new(secret.encode(), sign_header.encode(), hashlib.sha256).hexdigest()


# --- client side ----------------------------------------------------------------------------------


def signed_headers(
    params: Mapping[str, str],
    *,
    system_id: str,
    secret: str,
    content_type: str,
    now: datetime | None = None,
    nonce: bool = True,
) -> list[tuple[str, str]]:
    """The headers of one request, signed; values must be ASCII (the SDK's clients send one byte a character).

    Unlike the SDK, every request gets a fresh timestamp and, by default, a random
    ``nonce`` parameter, so that no two requests are alike and a replay check never
    refuses a legitimate one; no parameter of an earlier call is carried over.
    """
    values: dict[str, str] = {"systemid": system_id}
    values.update(params)
    values["timestamp"] = format_timestamp(now or datetime.now(UTC))
    if nonce:
        values["nonce"] = secrets.token_hex(8)
    values["Content-Type"] = content_type
    for name, value in values.items():
        if not str(value).isascii() or any(c in str(value) for c in "\r\n"):
            raise ValueError(f"parameter {name!r} must be ASCII on one line")
    sign_header = json.dumps(
        {f"{PREFIX}{name}": value for name, value in values.items()}, separators=(",", ":"), ensure_ascii=False
    )
    headers = [("Content-Type", content_type)]
    headers += [(f"{PREFIX}{name}", str(value)) for name, value in values.items()]
    headers += [
        (SIGN_HEADER, sign_header),
        (SIGN_HEADER_KEY, ";".join(values)),
        (HASH_HEADER, hmac_hex(secret, sign_header)),
        (VERSION_HEADER, VERSION),
        ("User-Agent", USER_AGENT),
    ]
    return headers


# --- server side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What a verified request says: its system, its signed parameters, its signature."""

    system_id: str
    params: tuple[tuple[str, str], ...]
    timestamp: str
    hash_header: str
    skew: timedelta = field(default=timedelta(0))

    def get(self, name: str) -> str | None:
        """A parameter by the caller's spelling first, then by a case-insensitive match."""
        for key, value in self.params:
            if key == name:
                return value
        lowered = name.lower()
        for key, value in self.params:
            if key.lower() == lowered:
                return value
        return None


def verify_request(
    headers: Iterable[tuple[str, str]],
    *,
    secret_of: Mapping[str, str],
    now: datetime,
    window: timedelta | None,
) -> SignedRequest:
    """Check a request's signature; raise AuthError saying why it is refused.

    ``headers`` is every (name, value) pair received, repeats included. ``window`` None
    skips the freshness check (legacy SDK clients keep one timestamp for their life).
    Replay is checked by the caller, who keeps the memory of seen signatures.
    """
    received = list(headers)
    by_name: dict[str, list[str]] = {}
    for name, value in received:
        by_name.setdefault(name.lower(), []).append(value)

    def single(name: str) -> str:
        found = by_name.get(name.lower(), [])
        if len(found) != 1:
            raise AuthError("request", f"expected exactly one {name} header, got {len(found)}")
        return found[0]

    sign_header = single(SIGN_HEADER)
    signed_keys = single(SIGN_HEADER_KEY)
    hash_header = single(HASH_HEADER).strip().lower()
    if not sign_header.isascii():
        raise AuthError("request", "header values must be ASCII")
    try:
        signed = parse_json(sign_header, object_pairs_hook=list)
    except ValueError:
        raise AuthError("request", f"{SIGN_HEADER} is not JSON") from None
    if not isinstance(signed, list) or not signed:
        raise AuthError("request", f"{SIGN_HEADER} is not a JSON object with parameters")
    params: list[tuple[str, str]] = []
    for key, value in signed:
        if not isinstance(key, str) or not key.startswith(PREFIX):
            raise AuthError("request", f"signed name {key!r} lacks the {PREFIX} prefix")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise AuthError("request", f"signed value of {key} is not a string or number")
        params.append((key[len(PREFIX) :], str(value)))

    system_id = next((v for k, v in params if k.lower() == "systemid"), None)
    if system_id is None:
        raise AuthError("request", "the signed headers name no systemid")
    secret = secret_of.get(system_id)
    # Compare against a dummy secret for unknown systems, so timing does not tell which exist.
    expected = hmac_hex(secret if secret is not None else "\0unknown", sign_header)
    if not hmac.compare_digest(expected, hash_header) or secret is None:
        raise AuthError("credentials", "unknown system or wrong signature")

    # sign-header-key must list exactly the signed names, in any order.
    if sorted(signed_keys.split(";")) != sorted(k for k, _ in params):
        raise AuthError("request", f"{SIGN_HEADER_KEY} does not list the signed names")
    # Every signed (name, value) must have arrived as a header, and every parameter header must be signed:
    # headers are compared as a multiset, names without regard to case.
    sent = sorted((name.lower(), value) for name, value in received if name.lower().startswith(PREFIX.lower()))
    sent = [(name, value) for name, value in sent if name not in _NOT_PARAMETERS]
    claimed = sorted((f"{PREFIX}{k}".lower(), v) for k, v in params)
    if sent != claimed:
        raise AuthError("request", "the XroadVnpt headers differ from the signed ones")

    timestamp = next((v for k, v in params if k.lower() == "timestamp"), None)
    if timestamp is None:
        raise AuthError("request", "the signed headers carry no timestamp")
    try:
        skew = timestamp_skew(timestamp, now)
    except ValueError as exc:
        raise AuthError("timestamp", str(exc)) from None
    if window is not None and skew > window:
        raise AuthError("timestamp", f"timestamp {timestamp} is {int(skew.total_seconds())} s away from now")
    return SignedRequest(system_id, tuple(params), timestamp, hash_header, skew)


def accepted_time(created_time: str) -> float | None:
    """An axis's created_time of a listed message (Vietnam wall-clock, edXML's form) as epoch
    seconds: when it accepted the message; None when it gives none we can read, or one no
    axis can have meant (before 1970, or past 9999 in UTC: .NET's DateTime.MinValue is
    0001/01/01, which Vietnam's offset puts before the first year)."""
    try:
        moment = parse_edxml_timestamp(created_time.strip()).replace(tzinfo=VIETNAM)
        seconds = moment.timestamp()
        datetime.fromtimestamp(seconds, UTC)  # representable both ways, or not a time at all
    except (ValueError, OverflowError, OSError):
        return None
    return seconds if seconds >= 0 else None


def kept_acceptance(accepted_at: float | None) -> float | None:
    """A recorded acceptance time, or None for one that is no time (negative: kept before
    accepted_time refused such values)."""
    return accepted_at if accepted_at is not None and accepted_at >= 0 else None


def accepted_moment(accepted_at: float | None) -> datetime | None:
    """When an axis accepted a message, as a signature is judged at: never later than now
    (an axis clock ahead of ours); None when it said nothing, or nothing a time can be (a
    record kept before accepted_time refused such values)."""
    accepted_at = kept_acceptance(accepted_at)
    if accepted_at is None:
        return None
    try:
        return datetime.fromtimestamp(min(accepted_at, time.time()), UTC)
    except (ValueError, OverflowError, OSError):
        return None


# The axis's own identifier of a delivery (a UUID at the national axis and ours). It is sent
# back in signed headers (ASCII, one line) and names files (.rejected/<docId>, the SDK's
# <folder>/<yyyy>/<M>/<docId>.edxml), so anything else can never be fetched or acknowledged.
DOC_ID_MAX_CHARS = 128
_DOC_ID = re.compile(rf"[!-~]{{1,{DOC_ID_MAX_CHARS}}}")  # printable ASCII, no blank


def doc_id_problem(value: object) -> str | None:
    """Why ``value``, an axis's docId, is not one we can use; None when it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return f"docId is {type(value).__name__ if value is not None else 'missing'}, not a string"
    shown = repr(value[:60]) + ("…" if len(value) > 60 else "")
    if not _DOC_ID.fullmatch(value):
        return f"docId {shown} is not 1-{DOC_ID_MAX_CHARS} printable ASCII characters without blanks"
    if "/" in value or "\\" in value or value.startswith("."):
        return f"docId {shown} would name a path, not a file"
    return None
