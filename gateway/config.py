"""The gateway's TOML configuration, read into frozen values with errors that name the key.

Each section is a frozen dataclass; a key's type and default are its field's. A key or
section the gateway does not know, a value of the wrong type or a missing required key is
refused with the file and the key in the message. Relative paths resolve against the
folder of the configuration file. config.example.toml documents every key with its
default, and a test keeps the two in step.
"""

from __future__ import annotations

import enum
import itertools
import math
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from gateway.edxml import AgencyCode, Limits
from gateway.edxml.revocation import RevocationPolicy
from gateway.errors import AgencyCodeError, GatewayError
from gateway.pdfsig.verdict import PdfPolicy


class ConfigError(GatewayError):
    code = "CFG500"
    title = "configuration error"


@dataclass(frozen=True)
class AgencySection:
    """[agency]: who this gateway speaks for."""

    code: str
    name: str


@dataclass(frozen=True)
class HostedSection:
    """[[hosted]]: a further agency this installation sends and receives for (a huyện's phòng
    and xã, a sở's sub-units: đơn vị trực thuộc). Its key, certificate, drop folder and inbox
    default to names derived from its code (see :func:`hosted_defaults`)."""

    code: str
    name: str
    parent: str | None = None
    key: Path | None = None
    cert: Path | None = None
    outbox: Path | None = None
    inbox: Path | None = None


@dataclass(frozen=True)
class AxisSection:
    """[axis]: where the national axis is and how this system signs in."""

    url: str
    system_id: str
    secret: str | None = field(default=None, repr=False)
    secret_file: Path | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Pkcs11Section:
    """[signing.pkcs11]: the agency's key on a PKCS#11 token instead of [signing] key."""

    module: Path  # the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token_label: str
    key_label: str
    pin_file: Path  # the user PIN, alone in a file readable by the service only


@dataclass(frozen=True)
class SigningSection:
    """[signing]: this agency's key and certificate, and whom it trusts."""

    key: Path | None = None
    cert: Path | None = None
    trust: Path | None = None
    # CA certificates that are no trust anchors but may complete a signer's path (PEM bundle)
    intermediates: Path | None = None
    allow_sha1: bool = False
    require_signatures: bool = True
    # "off" | "soft" | "hard": whether CRLs are fetched, and what an unknown status costs
    revocation: RevocationPolicy = RevocationPolicy.SOFT
    # "report" | "require": PDF attachments' signatures checked on arrival; require refuses (02)
    # a document with a PDF that has no valid signature
    pdf_signatures: PdfPolicy = PdfPolicy.REPORT
    pkcs11: Pkcs11Section | None = None


@dataclass(frozen=True)
class PathsSection:
    """[paths]: where state, the drop folder and the inbox live."""

    data_dir: Path = Path("var")
    outbox: Path = Path("outbox")
    inbox: Path = Path("inbox")
    hosted: Path = Path("hosted")


@dataclass(frozen=True)
class PollSection:
    """[poll]: how the axis is asked for new documents and statuses.

    With an axis that announces long-poll (ours does; the national axis does not), each list
    waits at the axis up to ``long_poll_seconds`` and answers the moment something arrives;
    otherwise the gateway asks every ``interval`` seconds.
    """

    interval: float = 2.0
    long_poll: bool = True
    long_poll_seconds: float = 25.0


@dataclass(frozen=True)
class WorkersSection:
    """[workers]: how often each worker runs (seconds)."""

    intake: float = 0.2
    push: float = 1.0
    deliver: float = 1.0
    respond: float = 1.0
    retry: float = 5.0
    housekeeping: float = 300.0


@dataclass(frozen=True)
class IntakeSection:
    """[intake]: the drop folder."""

    settle_seconds: float = 0.25
    watch: bool = True  # inotify wakes intake when an entry arrives (gateway/daemon/dropwatch.py)
    rescan_seconds: float = 5.0  # watched folders are also read this often (what inotify misses)


@dataclass(frozen=True)
class RetrySection:
    """[retry]: exponential backoff with jitter for calls to the axis."""

    initial_seconds: float = 5.0
    max_seconds: float = 300.0
    deadline_hours: float = 72.0


@dataclass(frozen=True)
class Config:
    path: Path
    signing: SigningSection
    limits: Limits
    agency: AgencySection | None = None
    axis: AxisSection | None = None
    paths: PathsSection = PathsSection()
    poll: PollSection = PollSection()
    workers: WorkersSection = WorkersSection()
    intake: IntakeSection = IntakeSection()
    retry: RetrySection = RetrySection()
    hosted: tuple[HostedSection, ...] = ()

    @property
    def secret(self) -> str:
        """The axis secret, read from the file when one is named."""
        assert self.axis is not None
        if self.axis.secret is not None:
            return self.axis.secret
        assert self.axis.secret_file is not None
        try:
            return self.axis.secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the secret file: {exc.strerror}", where=f"{self.path}: axis.secret_file"
            ) from None


SECTIONS: dict[str, type] = {
    "agency": AgencySection,
    "axis": AxisSection,
    "signing": SigningSection,
    "paths": PathsSection,
    "poll": PollSection,
    "workers": WorkersSection,
    "intake": IntakeSection,
    "retry": RetrySection,
    "limits": Limits,
    "hosted": HostedSection,  # an array of tables: [[hosted]]
}


def load(path: Path, *, daemon: bool = False, overrides: Path | None = None) -> Config:
    """Read a configuration file; ``daemon=True`` also requires what running the gateway needs.

    ``overrides`` names a second file whose keys replace the first's, section by section: the
    demo runs real configurations with its short intervals this way, leaving them as written.
    """
    where = str(path)
    data = _read_tables(path)
    if overrides is not None:
        for name, table in _read_tables(overrides).items():
            # [[hosted]] is a list: an override gives the whole list
            data[name] = table if isinstance(table, list) else {**data.get(name, {}), **table}
    base = path.resolve().parent
    sections: dict[str, Any] = {}
    for name, shape in SECTIONS.items():
        if name != "hosted" and (name in data or name not in ("agency", "axis")):
            sections[name] = _section(data.get(name, {}), shape, name, base, where)
    hosted = tuple(
        hosted_defaults(_section(table, HostedSection, f"hosted[{index}]", base, where), sections)
        for index, table in enumerate(data.get("hosted", []))
    )
    config = Config(path=path, hosted=hosted, **sections)
    if daemon:
        _check_daemon(config, where)
    return config


def hosted_defaults(hosted: HostedSection, sections: dict[str, Any]) -> HostedSection:
    """Fill a hosted agency's unset files from its code, so that a list of 300 stays short:
    key and certificate beside the installation's own ([signing] key's and cert's folder,
    CODE.key and CODE.pem, as `pki issue` names them), drop folder and inbox under
    [paths] hosted (hosted/CODE/outbox, hosted/CODE/inbox)."""
    signing, paths = sections["signing"], sections["paths"]
    code = hosted.code.strip()
    return replace(
        hosted,
        key=hosted.key or (signing.key.parent / f"{code}.key" if signing.key else None),
        cert=hosted.cert or (signing.cert.parent / f"{code}.pem" if signing.cert else None),
        outbox=hosted.outbox or paths.hosted / code / "outbox",
        inbox=hosted.inbox or paths.hosted / code / "inbox",
    )


def _check_daemon(config: Config, where: str) -> None:
    for name in ("agency", "axis"):
        if getattr(config, name) is None:
            raise ConfigError(f"section [{name}] is missing", where=f"{where}: [{name}]")
    assert config.agency is not None and config.axis is not None
    try:
        AgencyCode.lenient(config.agency.code)
    except AgencyCodeError as exc:
        raise ConfigError(exc.message, where=f"{where}: agency.code") from None
    if (config.axis.secret is None) == (config.axis.secret_file is None):
        raise ConfigError("give exactly one of secret and secret_file", where=f"{where}: axis.secret")
    if len(config.secret) < 16:
        raise ConfigError("the secret must be at least 16 characters", where=f"{where}: axis.secret")
    if not config.axis.url.startswith(("http://", "https://")):
        raise ConfigError(f"{config.axis.url!r} is not an http(s) URL", where=f"{where}: axis.url")
    signing = config.signing
    if (signing.key is None) == (signing.pkcs11 is None):
        raise ConfigError(
            "give exactly one of key (a PEM file) and [signing.pkcs11] (a key on a token)",
            where=f"{where}: signing.key",
        )
    for key in ("key", "cert", "trust"):
        value = getattr(signing, key)
        if value is None and key != "key":
            raise ConfigError(f"key {key!r} is missing", where=f"{where}: signing.{key}")
        if value is not None and not value.is_file():
            raise ConfigError(f"{value} does not exist", where=f"{where}: signing.{key}")
    if signing.pkcs11 is not None:
        for key in ("module", "pin_file"):
            value = getattr(signing.pkcs11, key)
            if not value.is_file():
                raise ConfigError(f"{value} does not exist", where=f"{where}: signing.pkcs11.{key}")
    if config.signing.intermediates is not None and not config.signing.intermediates.is_file():
        raise ConfigError(f"{config.signing.intermediates} does not exist", where=f"{where}: signing.intermediates")
    _check_hosted(config, where)
    numbers = [("axis", "timeout_seconds")]  # 0 or less: aiohttp waits for a stalled axis for ever
    numbers += [
        (section, f.name)
        for section in ("poll", "workers", "intake", "retry")
        for f in fields(getattr(config, section))
    ]
    for section, name in numbers:
        value = getattr(getattr(config, section), name)
        # nan passes every comparison and inf overflows the timers: neither is a number of seconds
        if not isinstance(value, bool) and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"must be a positive number, not {value}", where=f"{where}: {section}.{name}")


def _check_hosted(config: Config, where: str) -> None:
    """Each hosted agency: a code of its own, its files there, folders apart from everyone's."""
    assert config.agency is not None
    own = AgencyCode.lenient(config.agency.code).text
    codes = {own: "the installation's own [agency] code"}
    folders = [
        (config.paths.outbox.resolve(), "paths.outbox"),
        (config.paths.inbox.resolve(), "paths.inbox"),
    ]
    for index, hosted in enumerate(config.hosted):
        key = f"hosted[{index}]"
        try:
            code = AgencyCode.lenient(hosted.code).text
        except AgencyCodeError as exc:
            raise ConfigError(exc.message, where=f"{where}: {key}.code") from None
        if code in codes:
            raise ConfigError(f"{code} is already {codes[code]}", where=f"{where}: {key}.code")
        codes[code] = f"{key}.code"
        if hosted.parent is not None:
            try:
                AgencyCode.lenient(hosted.parent)
            except AgencyCodeError as exc:
                raise ConfigError(exc.message, where=f"{where}: {key}.parent") from None
        for name in ("key", "cert"):
            value = getattr(hosted, name)
            if name == "key" and value is None and config.signing.pkcs11 is not None:
                continue  # on the installation's token, labelled with its code
            if value is None or not value.is_file():
                raise ConfigError(
                    f"{value} does not exist (the {name} of {code}; by default CODE.{'key' if name == 'key' else 'pem'}"
                    f" beside signing.{name}, as `edxml-gateway pki issue` names it)",
                    where=f"{where}: {key}.{name}",
                )
        assert hosted.outbox is not None and hosted.inbox is not None
        folders += [(hosted.outbox.resolve(), f"{key}.outbox"), (hosted.inbox.resolve(), f"{key}.inbox")]
    data = config.paths.data_dir.resolve()
    for folder, name in folders:
        # intake would take the gateway's own state for a job, or hand its signed files away
        if folder == data or folder.is_relative_to(data / "outgoing") or data.is_relative_to(folder):
            raise ConfigError(
                f"{folder} overlaps paths.data_dir ({data}), where the gateway keeps its own state",
                where=f"{where}: {name}",
            )
    # Sorted by their parts, a folder inside another (or the same) comes right after it: 600
    # folders of 300 agencies are checked in one pass, not 180,000 pairs (1.5 s at start).
    ordered = sorted(range(len(folders)), key=lambda index: folders[index][0].parts)
    for first, second in itertools.pairwise(ordered):
        outer, inner = folders[first][0], folders[second][0]
        if inner.parts[: len(outer.parts)] == outer.parts:
            # said of the key that comes later in the file, as a reader meets the conflict
            later, earlier = folders[max(first, second)], folders[min(first, second)]
            raise ConfigError(
                f"{later[0]} overlaps {earlier[1]} ({earlier[0]}): each agency needs a drop folder and inbox"
                " of its own",
                where=f"{where}: {later[1]}",
            )


def _read_tables(path: Path) -> dict[str, dict[str, Any]]:
    where = str(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist", where=where) from None
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror}", where=where) from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where) from None
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown section [{name}]; known: {', '.join(SECTIONS)}", where=f"{where}: [{name}]")
        if name == "hosted":
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise ConfigError("hosted agencies are an array of tables: [[hosted]]", where=f"{where}: hosted")
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table ([{name}])", where=f"{where}: {name}")
    return data


def _section(table: dict[str, Any], shape: type, name: str, base: Path, where: str) -> Any:
    hints = typing.get_type_hints(shape)
    known = {f.name: f for f in fields(shape)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {key!r}; [{name}] takes {', '.join(known)}", where=f"{where}: {name}.{key}")
    values: dict[str, Any] = {}
    for key, spec in known.items():
        if key in table:
            values[key] = _convert(table[key], hints[key], base, f"{where}: {name}.{key}")
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ConfigError(f"key {key!r} is missing", where=f"{where}: {name}.{key}")
        elif isinstance(spec.default, Path):
            values[key] = base / spec.default
    try:
        return shape(**values)
    except ValueError as exc:
        raise ConfigError(str(exc), where=f"{where}: [{name}]") from None


def _convert(value: Any, hint: Any, base: Path, where: str) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = [o for o in options if o is not type(None)]
    kind = kinds[0]
    if kind is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"must be a path, got {value!r}", where=where)
        return base / value
    if is_dataclass(kind):  # a table inside a section: [signing.pkcs11]
        if not isinstance(value, dict):
            raise ConfigError(f"must be a table, got {value!r}", where=where)
        file, _, name = where.rpartition(": ")
        return _section(value, kind, name, base, file)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        choices = [member.value for member in kind]
        if value not in choices:
            raise ConfigError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}", where=where)
        return kind(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int in Python; a limit of `true` is a mistake, not 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"must be {kind.__name__}, got {value!r}", where=where)
    return value
