"""The axis mock's TOML configuration (axis.toml), read into frozen values.

Relative paths resolve against the file's folder. Keys this version does not use are
allowed (the issue's contract), but every required key must be there and of its type;
errors name the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import ConfigError
from gateway.edxml import DEFAULT_LIMITS, AgencyCode
from gateway.edxml.revocation import RevocationPolicy
from gateway.errors import AgencyCodeError


@dataclass(frozen=True)
class SystemConfig:
    """A connected system: one secret, the agencies it speaks for."""

    id: str
    secret: str
    agencies: tuple[str, ...]
    # The public SDK keeps one timestamp per service object and repeats signed headers;
    # such a client is let through without the freshness window and replay check, with a warning.
    legacy_sdk: bool = False

    def __repr__(self) -> str:  # never print the secret
        return f"SystemConfig(id={self.id!r}, agencies={self.agencies!r}, legacy_sdk={self.legacy_sdk})"


@dataclass(frozen=True)
class AgencyConfig:
    code: str
    name: str
    mail: str = ""
    locked: bool = False


@dataclass(frozen=True)
class UpstreamConfig:
    """[upstream]: the axis above this one (a provincial axis's national axis, VDXP), which it
    reaches as one connected system holding every agency registered here."""

    url: str
    system_id: str
    secret: str
    timeout_seconds: float = 30.0
    poll_interval: float = 2.0  # seconds between plain lists, when the upstream has no long-poll
    long_poll: bool = True  # long-poll an upstream that announces it
    long_poll_seconds: float = 25.0
    directory_seconds: float = 300.0  # the national directory read, and our agencies registered, this often
    retry_initial_seconds: float = 2.0  # backoff after a failed call: doubles up to retry_max_seconds
    retry_max_seconds: float = 60.0

    def __repr__(self) -> str:  # never print the secret
        return f"UpstreamConfig(url={self.url!r}, system_id={self.system_id!r})"


@dataclass(frozen=True)
class AxisConfig:
    path: Path
    host: str
    port: int
    data_dir: Path
    code: str
    systems: tuple[SystemConfig, ...]
    agencies: tuple[AgencyConfig, ...]
    max_body_bytes: int = DEFAULT_LIMITS.max_bytes
    timestamp_window_seconds: int = 300
    fail_retry_seconds: int = 60
    verify_signatures: bool = False
    trust: Path | None = None
    intermediates: Path | None = None  # CA certificates that complete signers' paths (not anchors)
    allow_sha1: bool = False
    revocation: RevocationPolicy = RevocationPolicy.SOFT  # applied when verify_signatures is on
    long_poll: bool = True
    batching: bool = True  # small messages inline in lists, many docIds per updateStatus
    upstream: UpstreamConfig | None = None


def load(path: Path) -> AxisConfig:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc}", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where) from None
    base = path.resolve().parent
    _known(data, SECTIONS, where, "")
    server = _table(data, "server", where)
    _known(server, SERVER_KEYS, where, "server")
    for name, keys in (("systems", SYSTEM_KEYS), ("agencies", AGENCY_KEYS)):
        for index, item in enumerate(_list(data, name, where)):
            _known(item, keys, where, f"{name}[{index}]")
    systems = tuple(
        _system(item, base, f"{where}: systems[{i}]") for i, item in enumerate(_list(data, "systems", where))
    )
    agencies = tuple(_agency(item, f"{where}: agencies[{i}]") for i, item in enumerate(_list(data, "agencies", where)))

    declared = {a.code for a in agencies}
    owner: dict[str, str] = {}
    for system in systems:
        for code in system.agencies:
            if code not in declared:
                raise ConfigError(
                    f"system {system.id!r} speaks for {code}, which no [[agencies]] entry declares",
                    where=f"{where}: systems.agencies",
                )
            if code in owner:
                raise ConfigError(
                    f"{code} belongs to both {owner[code]!r} and {system.id!r}", where=f"{where}: systems"
                )
            owner[code] = system.id
    if len({s.id for s in systems}) != len(systems):
        raise ConfigError("two [[systems]] share an id", where=f"{where}: systems.id")

    at = f"{where}: server"  # each optional key named as server.KEY
    trust = _optional(server, "trust", str, at)
    intermediates = _optional(server, "intermediates", str, at)
    revocation = _optional(server, "revocation", str, at) or RevocationPolicy.SOFT.value
    if revocation not in {policy.value for policy in RevocationPolicy}:
        choices = ", ".join(repr(policy.value) for policy in RevocationPolicy)
        raise ConfigError(f"must be one of {choices}, got {revocation!r}", where=f"{where}: server.revocation")
    config = AxisConfig(
        path=path,
        host=_required(server, "host", str, at),
        port=_required(server, "port", int, at),
        data_dir=base / _required(server, "data_dir", str, at),
        code=_code(_required(server, "code", str, at), f"{at}.code"),
        systems=systems,
        agencies=agencies,
        max_body_bytes=_or_default(_optional(server, "max_body_bytes", int, at), DEFAULT_LIMITS.max_bytes),
        timestamp_window_seconds=_or_default(_optional(server, "timestamp_window_seconds", int, at), 300),
        fail_retry_seconds=_or_default(_optional(server, "fail_retry_seconds", int, at), 60),
        verify_signatures=bool(_optional(server, "verify_signatures", bool, at)),
        trust=base / trust if trust else None,
        intermediates=base / intermediates if intermediates else None,
        revocation=RevocationPolicy(revocation),
        allow_sha1=bool(_optional(server, "allow_sha1", bool, at)),
        long_poll=_optional(server, "long_poll", bool, at) is not False,
        batching=_optional(server, "batching", bool, at) is not False,
        upstream=_upstream(data["upstream"], base, f"{where}: upstream") if "upstream" in data else None,
    )
    if not 0 <= config.port < 65536:  # 0: any free port, logged in axis_listening (tests use it)
        raise ConfigError(f"port {config.port} is not a TCP port", where=f"{where}: server.port")
    if config.verify_signatures and config.trust is None:
        raise ConfigError("verify_signatures needs a trust store", where=f"{where}: server.trust")
    for name in ("max_body_bytes", "timestamp_window_seconds", "fail_retry_seconds"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive", where=f"{where}: server.{name}")
    return config


# Everything axis.toml may say: a section or key it does not know (a typo, or an [upstream]
# this axis has no such feature for) is refused rather than silently run without.
SECTIONS = ("server", "systems", "agencies", "upstream")
SERVER_KEYS = (
    "host",
    "port",
    "data_dir",
    "code",
    "max_body_bytes",
    "timestamp_window_seconds",
    "fail_retry_seconds",
    "verify_signatures",
    "trust",
    "intermediates",
    "revocation",
    "allow_sha1",
    "long_poll",
    "batching",
)
# Whose the messages the bridge brings down from the upstream are (documents.system_id): a
# system of that id would list them as its own sent ones (getSentEdocList).
UPSTREAM_SYSTEM_ID = "upstream"
SYSTEM_KEYS = ("id", "secret", "secret_file", "agencies", "legacy_sdk")
UPSTREAM_KEYS = (
    "url",
    "system_id",
    "secret",
    "secret_file",
    "timeout_seconds",
    "poll_interval",
    "long_poll",
    "long_poll_seconds",
    "directory_seconds",
    "retry_initial_seconds",
    "retry_max_seconds",
)
AGENCY_KEYS = ("code", "name", "mail", "locked")


def _known(table: dict[str, Any], known: tuple[str, ...], where: str, name: str) -> None:
    for key in table:
        if key not in known:
            if not name:
                raise ConfigError(f"unknown section [{key}]; known: {', '.join(known)}", where=f"{where}: [{key}]")
            raise ConfigError(f"unknown key {key!r}; [{name}] takes {', '.join(known)}", where=f"{where}: {name}.{key}")


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] is missing", where=f"{where}: [{key}]")
    return value


def _list(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"{key} must be an array of tables ([[{key}]])", where=f"{where}: {key}")
    return value


def _required(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"key {key!r} is missing", where=f"{where}.{key}")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"must be {kind.__name__}, got {value!r}", where=f"{where}.{key}")
    return value


def _optional(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    return _required(table, key, kind, where) if key in table else None


def _or_default(value: Any, default: Any) -> Any:
    """The default only when the key is absent: a 0 written is checked (and refused), not replaced."""
    return default if value is None else value


def _code(text: str, where: str) -> str:
    try:
        return AgencyCode.lenient(text).text
    except AgencyCodeError as exc:
        raise ConfigError(exc.message, where=where) from None


def _upstream(table: Any, base: Path, where: str) -> UpstreamConfig:
    if not isinstance(table, dict):
        raise ConfigError("must be a table ([upstream])", where=where)
    _known(table, UPSTREAM_KEYS, where.rsplit(": ", 1)[0], "upstream")
    url = _required(table, "url", str, where)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{url!r} is not an http(s) URL", where=f"{where}.url")
    numbers: dict[str, Any] = {}
    for key in (
        "timeout_seconds",
        "poll_interval",
        "long_poll_seconds",
        "directory_seconds",
        "retry_initial_seconds",
        "retry_max_seconds",
    ):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"must be a positive number, got {value!r}", where=f"{where}.{key}")
            numbers[key] = float(value)
    return UpstreamConfig(
        url=url,
        system_id=_required(table, "system_id", str, where),
        secret=_secret(table, base, where),
        long_poll=_optional(table, "long_poll", bool, where) is not False,
        **numbers,
    )


def _secret(item: dict[str, Any], base: Path, where: str) -> str:
    """``secret`` or the first line of ``secret_file``: exactly one, at least 16 characters."""
    if "secret" in item and "secret_file" in item:
        raise ConfigError("give secret or secret_file, not both", where=f"{where}.secret")
    if "secret_file" in item:
        secret_path = base / _required(item, "secret_file", str, where)
        try:
            secret = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"secret file {secret_path} cannot be read: {exc.strerror}", where=f"{where}.secret_file"
            ) from None
    else:
        secret = _required(item, "secret", str, where)
    if len(secret) < 16:
        raise ConfigError("the secret must be at least 16 characters", where=f"{where}.secret")
    return secret


def _system(item: dict[str, Any], base: Path, where: str) -> SystemConfig:
    system_id = _required(item, "id", str, where)
    if system_id == UPSTREAM_SYSTEM_ID:
        raise ConfigError(
            f"{UPSTREAM_SYSTEM_ID!r} is the system the axis records what its upstream brings down under",
            where=f"{where}.id",
        )
    secret = _secret(item, base, where)
    agencies = _required(item, "agencies", list, where)
    if not all(isinstance(code, str) for code in agencies):
        raise ConfigError("agencies must be a list of codes", where=f"{where}.agencies")
    return SystemConfig(
        id=system_id,
        secret=secret,
        agencies=tuple(_code(code, f"{where}.agencies") for code in agencies),
        legacy_sdk=bool(_optional(item, "legacy_sdk", bool, where)),
    )


def _agency(item: dict[str, Any], where: str) -> AgencyConfig:
    return AgencyConfig(
        code=_code(_required(item, "code", str, where), f"{where}.code"),
        name=_required(item, "name", str, where),
        mail=_optional(item, "mail", str, where) or "",
        locked=bool(_optional(item, "locked", bool, where)),
    )
