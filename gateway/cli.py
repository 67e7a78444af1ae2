"""The `edxml-gateway` command: thin argument handling over the layers below.

Exit codes: 0 success, 1 the work was refused or failed (with the reason on stderr or
in the per-file verdict), 2 usage error, 78 (`run`, `axis`) a configuration that cannot
start; `health` follows the monitoring convention instead (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN). The format layer's commands are in cli_format.py, `report` in cli_report.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__, cli_pki, config
from gateway.cli_bridge import cmd_bridge
from gateway.cli_errors import os_error, unknown_reason
from gateway.cli_format import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    _stdout_to_devnull,
    cmd_sign,
    cmd_validate,
)
from gateway.cli_format import emit as _emit
from gateway.cli_report import cmd_report
from gateway.errors import FolderError, GatewayError, KeyMaterialError, UsageError

# --- axis -------------------------------------------------------------------------------------------


# EX_CONFIG (sysexits.h): what `run` and `axis` exit with when they cannot start as configured;
# the units do not restart on it (RestartPreventExitStatus=78): a restart would fail alike.
EXIT_CONFIG = 78
_CONFIGURATION_ERRORS = (config.ConfigError, KeyMaterialError, FolderError)


def cmd_axis(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.axis import config as axis_config
    from gateway.axis.main import serve

    try:
        settings = axis_config.load(Path(args.config))
        asyncio.run(serve(settings))
    except (GatewayError, OSError) as exc:
        return _not_started("axis", exc)
    return EXIT_OK


# --- the gateway daemon and its commands ---------------------------------------------------------


def _daemon_config(args: argparse.Namespace) -> config.Config:
    overrides = getattr(args, "overrides", None)
    return config.load(Path(args.config), daemon=True, overrides=Path(overrides) if overrides else None)


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.daemon.runner import run

    try:
        settings = _daemon_config(args)
        asyncio.run(run(settings))
    except (GatewayError, OSError) as exc:  # e.g. RUN951, another instance on the data folder
        return _not_started("gateway", exc)
    return EXIT_OK


def _not_started(component: str, exc: GatewayError | OSError) -> int:
    """Why a service did not start, as a log line like every other one of the service: JSON in the
    journal (the README's jq pipelines read it), readable on a terminal; and its exit code: 78
    for what only a person can mend (the configuration, a key, a folder's owner or mode: a
    restart would fail alike), 1 for the rest (another instance, an address taken for now)."""
    from gateway import logs

    error = os_error(exc) if isinstance(exc, OSError) else exc
    logs.get(component).error("not_started", code=error.code, reason=error.message, where=error.where, error=str(error))
    return EXIT_CONFIG if isinstance(error, _CONFIGURATION_ERRORS) else EXIT_FAILED


def cmd_send(args: argparse.Namespace) -> int:
    from gateway.daemon import commands

    document_id = commands.send(
        _daemon_config(args),
        to=args.to,
        subject=args.subject,
        files=[Path(f) for f in args.files],
        code_number=args.code_number,
        code_notation=args.code_notation,
        paper=args.paper,
        from_code=args.from_code,
    )
    print(document_id)
    return EXIT_OK


def cmd_respond(args: argparse.Namespace) -> int:
    from gateway.daemon import commands

    document_id = commands.respond(
        _daemon_config(args),
        args.id,
        code=args.code,
        description=args.description,
        staff=args.staff,
        agency_code=args.agency,
    )
    print(f"status {args.code} queued for {document_id}")
    return EXIT_OK


def cmd_recall(args: argparse.Namespace) -> int:
    from gateway.daemon import commands

    queued, before = commands.recall(_daemon_config(args), args.document_id, reason=args.reason)
    if queued:
        print(f"recall request (13) queued for {', '.join(queued)}")
    if before:
        print(f"recall request (13) queued before for {', '.join(before)}: not sent again")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    from gateway.daemon import commands

    count = commands.retry(_daemon_config(args), args.document_id)
    print(f"{count} message(s) queued again")
    return EXIT_OK


def cmd_track(args: argparse.Namespace) -> int:
    from gateway.daemon import listing

    timeline = listing.track(_daemon_config(args), args.document_id)
    _emit(json.dumps(timeline, ensure_ascii=False) if args.json else listing.render_track(timeline))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from gateway.daemon import listing

    rows = listing.list_documents(
        _daemon_config(args),
        received=args.received,
        state=args.state,
        peer=args.peer,
        since=args.since,
        limit=args.limit,
        agency=args.agency,
    )
    _emit(json.dumps(rows, ensure_ascii=False) if args.json else listing.render_list(rows))
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    from gateway.daemon import health

    try:
        level, report = health.check(_daemon_config(args))
    except Exception as exc:  # health could not look: UNKNOWN (3), whatever stopped it
        said = unknown_reason(exc)
        print(f"edxml-gateway: {said}", file=sys.stderr)
        unknown = {"status": "UNKNOWN", "healthy": False, "problems": [{"level": "UNKNOWN", "text": said}]}
        _emit(json.dumps(unknown, ensure_ascii=False) if args.json else f"UNKNOWN: {said}")
        return health.Level.UNKNOWN
    _emit(json.dumps(report, ensure_ascii=False) if args.json else health.render_text(report))
    return level


def cmd_abandon(args: argparse.Namespace) -> int:
    from gateway.daemon import commands

    count = commands.abandon(_daemon_config(args), args.document_id, reason=args.reason)
    print(f"{count} message(s) abandoned")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    import logging

    from gateway import demo, logs

    if args.docs < 6:
        raise UsageError("--docs must be at least 6: the scenario itself has six documents")
    logs.configure(level=logging.WARNING)  # the demo speaks on stdout; its own library calls stay quiet
    return demo.run(
        workdir=Path(args.workdir) if args.workdir else None, documents=args.docs, keep=args.keep, timeout=args.timeout
    )


# --- wiring -----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edxml-gateway", description="edXML interconnection gateway (QCVN 102:2016, VXP axis)")
    parser.add_argument("--version", action="version", version=f"edxml-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="check edXML files: schema, structure and signature")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--trust", metavar="CA.pem", help="certificate authorities whose signatures count")
    validate.add_argument("--allow-unsigned", action="store_true", help="accept files without a real signature")
    validate.add_argument("--strict", action="store_true", help="check against the strict schema (what we emit)")
    validate.add_argument("--allow-sha1", action="store_true", help="accept legacy SHA-1 signatures")
    validate.add_argument("--json", action="store_true", help="one JSON object per file")
    validate.add_argument("--config", metavar="FILE", help="read [signing] trust and allow_sha1, and [limits]")
    validate.set_defaults(handler=cmd_validate)

    sign = commands.add_parser("sign", help="sign an edXML file with XMLDSig")
    sign.add_argument("--key", metavar="KEY.pem")
    sign.add_argument("--cert", metavar="CERT.pem")
    sign.add_argument("--config", metavar="FILE", help="read [signing] key and cert, and [limits]")
    sign.add_argument("input", metavar="IN")
    sign.add_argument("output", metavar="OUT")
    sign.set_defaults(handler=cmd_sign)

    cli_pki.add_commands(commands, _Parser)
    run = commands.add_parser("run", help="run this agency's gateway in the foreground (for systemd)")
    run.add_argument("--config", required=True, metavar="gateway.toml")
    run.add_argument(
        "--overrides", metavar="FILE", help="TOML whose keys replace the configuration's (the demo's short intervals)"
    )
    run.set_defaults(handler=cmd_run)

    send = commands.add_parser("send", help="queue a document for sending and print its DocumentId")
    send.add_argument("--config", required=True)
    send.add_argument("--to", required=True, action="append", metavar="CODE", help="a recipient agency (repeat)")
    send.add_argument("--subject", required=True)
    send.add_argument("--code-number")
    send.add_argument("--code-notation")
    send.add_argument("--paper", action="store_true", help="a paper copy is also sent")
    send.add_argument(
        "--from",
        dest="from_code",
        metavar="CODE",
        help="the hosted agency that sends it (default: the installation's own [agency])",
    )
    send.add_argument("files", nargs="*", metavar="FILE")
    send.set_defaults(handler=cmd_send)

    respond = commands.add_parser("respond", help="send a status (03-06, 15, 16) about a received document")
    respond.add_argument("--config", required=True)
    respond.add_argument("id", metavar="ID", help="the inbox folder name (or the DocumentId)")
    respond.add_argument("--code", required=True, choices=["02", "03", "04", "05", "06", "15", "16"])
    respond.add_argument("--description")
    respond.add_argument("--staff")
    respond.add_argument(
        "--agency", metavar="CODE", help="the hosted agency that received it, when several did (else found)"
    )
    respond.set_defaults(handler=cmd_respond)

    recall = commands.add_parser("recall", help="ask every recipient of a sent document to give it back (13)")
    recall.add_argument("--config", required=True)
    recall.add_argument("document_id", metavar="DOCUMENT_ID")
    recall.add_argument("--reason", required=True)
    recall.set_defaults(handler=cmd_recall)

    track = commands.add_parser("track", help="the timeline of a document, per recipient")
    track.add_argument("--config", required=True)
    track.add_argument("document_id", metavar="DOCUMENT_ID")
    track.add_argument("--json", action="store_true")
    track.set_defaults(handler=cmd_track)

    health = commands.add_parser(
        "health",
        help="running, polling, delivering; queues, failures, certificate (exit 0 OK 1 WARNING 2 CRITICAL 3 UNKNOWN)",
    )
    health.add_argument("--config", required=True)
    health.add_argument("--json", action="store_true")
    health.set_defaults(handler=cmd_health)

    retry = commands.add_parser("retry", help="send a failed document or status again")
    retry.add_argument("--config", required=True)
    retry.add_argument("document_id", metavar="DOCUMENT_ID")
    retry.set_defaults(handler=cmd_retry)

    listing = commands.add_parser("list", help="documents sent (or --received), newest first, by state, peer, date")
    listing.add_argument("--config", required=True)
    listing.add_argument("--received", action="store_true", help="documents received instead of sent")
    listing.add_argument(
        "--state",
        help="sent: queued, sent, failed, abandoned; received: delivered, rejected, duplicate (another axis copy"
        " of a delivered document), listed (not fetched yet)",
    )
    listing.add_argument("--peer", metavar="CODE", help="a recipient (or, with --received, the sender)")
    listing.add_argument("--since", metavar="DATE", help="yyyy-mm-dd, Vietnam time")
    listing.add_argument("--limit", type=_at_least_one, default=200, help="at most this many, newest first (200)")
    listing.add_argument("--agency", metavar="CODE", help="what one hosted agency sent (or received)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    abandon = commands.add_parser("abandon", help="give up on a failed document or status, keeping who and why")
    abandon.add_argument("--config", required=True)
    abandon.add_argument("document_id", metavar="DOCUMENT_ID")
    abandon.add_argument("--reason", required=True, help="why: kept in the record with your account and the time")
    abandon.set_defaults(handler=cmd_abandon)

    report_parser = commands.add_parser("report", help="the quarterly exchange report of one agency or a province")
    report_parser.add_argument(
        "--config",
        required=True,
        action="append",
        help="a gateway configuration or a folder of them (repeat to add agencies)",
    )
    report_parser.add_argument("--quarter", help="e.g. 2023Q3")
    report_parser.add_argument("--from", dest="date_from", metavar="DATE")
    report_parser.add_argument("--to", dest="date_to", metavar="DATE")
    report_parser.add_argument("--format", choices=["text", "json", "csv", "html"], default="text")
    report_parser.add_argument("--by-peer-level", action="store_true")
    report_parser.add_argument(
        "--agency", metavar="CODE", help="one hosted agency of the installation (default: every one it hosts)"
    )
    report_parser.set_defaults(handler=cmd_report)

    demo = commands.add_parser(
        "demo", help="a country on this machine: the national axis, two provincial axes, gateways exchanging documents"
    )
    demo.add_argument("--workdir", help="an empty folder for the workspace (default: a temporary one)")
    demo.add_argument("--docs", type=int, default=10, help="documents to exchange (default 10, at least 6)")
    demo.add_argument("--keep", action="store_true", help="leave the workspace for inspection")
    demo.add_argument("--timeout", type=float, help=argparse.SUPPRESS)  # tests: how a demo that fails looks
    demo.set_defaults(handler=cmd_demo)

    axis = commands.add_parser(
        "axis", help="run the axis (VXP protocol) in the foreground: the national mock, or a provincial axis"
    )
    axis.add_argument("--config", required=True, metavar="axis.toml")
    axis.set_defaults(handler=cmd_axis)

    bridge = commands.add_parser(
        "bridge", help="a provincial axis's bridge to its upstream: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    )
    bridge.add_argument("--config", required=True, metavar="axis.toml")
    bridge.add_argument("--json", action="store_true")
    bridge.set_defaults(handler=cmd_bridge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gateway import logs

    logs.configure()  # log lines go to stderr; stdout carries only what a command prints for its user
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"edxml-gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        print(f"edxml-gateway: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `edxml-gateway track … | head`: the reader left, nothing is wrong
        _stdout_to_devnull()
        return EXIT_OK
    except OSError as exc:  # a file, folder or address this account cannot use: a sentence, not a traceback
        print(f"edxml-gateway: {os_error(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _at_least_one(text: str) -> int:
    """--limit: a count (SQLite reads LIMIT -1 as "no limit at all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def run() -> None:
    sys.exit(main())
