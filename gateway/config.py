"""The gateway's TOML configuration, read into frozen values with errors that name the key.

Only the sections the shipped commands read are defined here ([signing], [limits]);
config.example.toml documents every key with its default, and a test keeps the two in
step. Relative paths resolve against the folder of the configuration file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gateway.edxml.xmlsafe import DEFAULT_LIMITS, Limits
from gateway.errors import GatewayError


class ConfigError(GatewayError):
    code = "CFG500"
    title = "configuration error"


@dataclass(frozen=True)
class SigningConfig:
    """[signing]: this agency's key and certificate, and whom it trusts."""

    key: Path | None = None
    cert: Path | None = None
    trust: Path | None = None
    allow_sha1: bool = False


@dataclass(frozen=True)
class Config:
    path: Path
    signing: SigningConfig
    limits: Limits


_SECTIONS = {"signing", "limits"}
# Sections the daemon will read; accepted here so one file serves every command.
_LATER_SECTIONS = {"agency", "axis", "paths", "poll", "workers", "retry", "log"}


def load(path: Path) -> Config:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist", where=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror}", where=str(path)) from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from None
    for section in data:
        if section not in _SECTIONS | _LATER_SECTIONS:
            raise ConfigError(f"unknown section [{section}]", where=f"{path}: [{section}]")
    base = path.resolve().parent
    signing_table = _table(data, "signing", path)
    limits_table = _table(data, "limits", path)
    _only_known(signing_table, SigningConfig, "signing", path)
    _only_known(limits_table, Limits, "limits", path)
    signing = SigningConfig(
        key=_path(signing_table, "key", base, path),
        cert=_path(signing_table, "cert", base, path),
        trust=_path(signing_table, "trust", base, path),
        allow_sha1=_typed(signing_table, "allow_sha1", bool, False, path),
    )
    values = {f.name: _typed(limits_table, f.name, int, getattr(DEFAULT_LIMITS, f.name), path) for f in fields(Limits)}
    try:
        limits = Limits(**values)
    except ValueError as exc:
        raise ConfigError(str(exc), where=f"{path}: [limits]") from None
    return Config(path=path, signing=signing, limits=limits)


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{name} must be a table ([{name}])", where=f"{path}: {name}")
    return table


def _only_known(table: dict[str, Any], shape: type, section: str, path: Path) -> None:
    known = {f.name for f in fields(shape)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r}; [{section}] takes {', '.join(sorted(known))}", where=f"{path}: {section}.{key}"
            )


def _typed(table: dict[str, Any], key: str, kind: type, default: Any, path: Path) -> Any:
    value = table.get(key, default)
    # bool is an int in Python; a limit of `true` is a mistake, not 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"must be {kind.__name__}, got {value!r}", where=f"{path}: {key}")
    return value


def _path(table: dict[str, Any], key: str, base: Path, path: Path) -> Path | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"must be a path, got {value!r}", where=f"{path}: signing.{key}")
    return base / value
