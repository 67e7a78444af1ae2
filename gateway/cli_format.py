"""The `edxml-gateway` commands of the format layer alone: validate, sign.

They need no gateway, axis or database: a file, a key, a trust store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gateway import config, edxml
from gateway.edxml import DEFAULT_LIMITS, Limits
from gateway.errors import GatewayError, LimitExceeded, UsageError
from gateway.fsutil import write_atomic

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def read_file(path: Path, *, limit: int | None = None, what: str = "file") -> bytes:
    """Read a file named on the command line, refusing oversized ones before reading them."""
    try:
        with path.open("rb") as handle:
            if limit is None:
                return handle.read()
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist", where=str(path)) from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory", where=str(path)) from None
    except OSError as exc:
        raise UsageError(f"{what} {path} cannot be read: {exc.strerror}", where=str(path)) from None
    if len(data) > limit:
        raise LimitExceeded(f"{path} is larger than the limit of {limit} bytes", where=str(path))
    return data


# --- validate ---------------------------------------------------------------------------------------


def _validate_one(path: Path, args: argparse.Namespace, trust: edxml.TrustStore | None, limits: Limits) -> dict:
    result: dict = {"file": str(path)}
    try:
        data = read_file(path, limit=limits.max_bytes)
        checked = edxml.validate(
            data,
            trust=trust,
            mode=edxml.SchemaMode.STRICT if args.strict else edxml.SchemaMode.LENIENT,
            limits=limits,
            require_signature=False,
            allow_sha1=args.allow_sha1,
        )
    except GatewayError as exc:
        result.update(verdict="invalid", code=exc.code, title=exc.title, reason=exc.message, where=exc.where)
        return result
    message = checked.message
    result.update(
        kind=checked.kind.value,
        sender=message.sender.organ_id.text,
        signature=checked.signature.state.value,
        signer=checked.signature.signer,
    )
    if isinstance(message, edxml.Document):
        result.update(recipients=[r.organ_id.text for r in message.to], document_id=message.document_id)
    else:
        result.update(status_code=message.status_code.wire, document_id=message.response_for.document_id)
    if checked.signature.valid:
        result.update(verdict="valid", reason=checked.signature.detail)
    elif args.allow_unsigned:
        result.update(verdict="valid", reason=f"unsigned, accepted by --allow-unsigned: {checked.signature.detail}")
    else:
        result.update(verdict="unsigned", code="SIG201", reason=checked.signature.detail)
    return result


def _describe(result: dict) -> str:
    if result["verdict"] == "invalid":
        where = f" (at {result['where']})" if result.get("where") else ""
        return f"{result['file']}: invalid {result['code']} {result['title']}: {result['reason']}{where}"
    kind = result["kind"]
    if kind == "status":
        what = f"status {result['status_code']} from {result['sender']}"
    else:
        what = f"document from {result['sender']} to {', '.join(result['recipients'])}"
    return f"{result['file']}: {result['verdict']} {what}: {result['reason']}"


def _settings(args: argparse.Namespace) -> config.Config | None:
    return config.load(Path(args.config)) if args.config else None


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    trust_path = Path(args.trust) if args.trust else (settings.signing.trust if settings else None)
    trust = edxml.TrustStore.from_pem(read_file(trust_path, what="trust store")) if trust_path else None
    limits = settings.limits if settings else DEFAULT_LIMITS
    args.allow_sha1 = args.allow_sha1 or bool(settings and settings.signing.allow_sha1)
    every_valid = True
    for name in args.files:
        result = _validate_one(Path(name), args, trust, limits)
        every_valid = every_valid and result["verdict"] == "valid"
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(_describe(result))
    return EXIT_OK if every_valid else EXIT_FAILED


# --- sign -------------------------------------------------------------------------------------------


def cmd_sign(args: argparse.Namespace) -> int:
    settings = _settings(args)
    key = Path(args.key) if args.key else (settings.signing.key if settings else None)
    cert = Path(args.cert) if args.cert else (settings.signing.cert if settings else None)
    if key is None or cert is None:
        raise UsageError("sign needs --key and --cert, or --config with [signing] key and cert")
    identity = edxml.SigningIdentity.from_pem(read_file(key, what="private key"), read_file(cert, what="certificate"))
    limits = settings.limits if settings else DEFAULT_LIMITS
    source = Path(args.input)
    signed = edxml.sign(read_file(source, limit=limits.max_bytes), identity, limits=limits)
    target = Path(args.output)
    if not target.parent.is_dir():
        raise UsageError(f"folder {target.parent} does not exist", where=str(target))
    write_atomic(target, signed)
    print(f"{target}: signed for {identity.agency}")
    return EXIT_OK


def emit(text: str) -> None:
    """Print for a reader that may leave early (`| head`): its leaving changes no exit code."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    # what is still buffered for the closed pipe would fail again at exit, as a traceback
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
