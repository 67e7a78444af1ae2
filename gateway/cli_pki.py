"""`edxml-gateway pki`: a development PKI in a folder (gateway.pki_folder): init, issue, revoke,
crl, sign-pdf, serve."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway import pki_folder
from gateway.errors import UsageError

EXIT_OK = 0
DEFAULT_CRL_PORT = 8089


def add_commands(commands: Any, parser_class: type) -> None:
    pki_parser = commands.add_parser("pki", help="development certificates: root → issuing CA → agencies, CRLs")
    pki_commands = pki_parser.add_subparsers(dest="pki_command", required=True, parser_class=parser_class)
    init = pki_commands.add_parser(
        "init", help="create a root and an issuing CA: DIR/ca.pem (the trust anchor), DIR/intermediate.pem"
    )
    init.add_argument("--dir", required=True)
    init.add_argument("--ec", action="store_true", help="ECDSA P-256 instead of RSA-2048")
    init.add_argument(
        "--crl-url",
        metavar="URL",
        default=f"http://127.0.0.1:{DEFAULT_CRL_PORT}",
        help="where `pki serve` will publish the CRLs, written into every certificate"
        f" (default http://127.0.0.1:{DEFAULT_CRL_PORT}; 'none' for certificates naming no CRL)",
    )
    init.set_defaults(handler=cmd_pki_init)
    issue = pki_commands.add_parser("issue", help="issue an agency certificate: DIR/CODE.pem, DIR/CODE.key")
    issue.add_argument("--dir", required=True)
    issue.add_argument("--agency", required=True, metavar="CODE")
    issue.add_argument("--name")
    issue.add_argument("--ec", action="store_true", help="ECDSA P-256 instead of RSA-2048")
    issue.set_defaults(handler=cmd_pki_issue)
    revoke = pki_commands.add_parser("revoke", help="revoke an agency's certificate and issue the CRLs again")
    revoke.add_argument("--dir", required=True)
    revoke.add_argument("--agency", required=True, metavar="CODE")
    revoke.add_argument("--reason", default="unspecified", help="an RFC 5280 reason: keyCompromise, superseded, …")
    revoke.add_argument("--at", metavar="ISO-TIME", help="revoked since (default now), e.g. 2026-12-01T08:00:00+07:00")
    revoke.set_defaults(handler=cmd_pki_revoke)
    crl = pki_commands.add_parser("crl", help="issue the CRLs again: DIR/crl/root.crl, DIR/crl/intermediate.crl")
    crl.add_argument("--dir", required=True)
    crl.add_argument("--days", type=float, default=pki_folder.CRL_DAYS, help="valid for (default 7 days)")
    crl.set_defaults(handler=cmd_pki_crl)
    sign_pdf = pki_commands.add_parser("sign-pdf", help="sign a PDF as the agency (PAdES, a new revision)")
    sign_pdf.add_argument("--dir", required=True)
    sign_pdf.add_argument("--agency", required=True, metavar="CODE")
    sign_pdf.add_argument("--field", default="ChuKy1", help="the signature field's name (default ChuKy1)")
    sign_pdf.add_argument("input", metavar="IN", help="a PDF, or - for a one-page sample")
    sign_pdf.add_argument("output", metavar="OUT")
    sign_pdf.set_defaults(handler=cmd_pki_sign_pdf)
    serve = pki_commands.add_parser("serve", help="publish DIR/crl over HTTP, issuing the CRLs anew when due")
    serve.add_argument("--dir", required=True)
    serve.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_CRL_PORT}", metavar="HOST:PORT")
    serve.set_defaults(handler=cmd_pki_serve)


def cmd_pki_init(args: argparse.Namespace) -> int:
    crl_url = None if args.crl_url.lower() == "none" else args.crl_url
    if crl_url is not None and not crl_url.startswith("http://"):
        raise UsageError(f"--crl-url must be an http:// address (CRLs are fetched over plain HTTP), not {crl_url!r}")
    cert_path, key_path = pki_folder.init_dir(Path(args.dir), use_ec=args.ec, crl_url=crl_url)
    print(f"development root CA: {cert_path} (key {key_path}, mode 0600): the trust anchor for [signing] trust")
    print(f"issuing CA: {Path(args.dir) / pki_folder.INTERMEDIATE_CERT}")
    if crl_url:
        print(f"CRLs: {Path(args.dir) / pki_folder.CRL_FOLDER}, to be served at {crl_url} by `pki serve`")
    return EXIT_OK


def cmd_pki_issue(args: argparse.Namespace) -> int:
    cert_path, key_path = pki_folder.issue_to_dir(Path(args.dir), args.agency, args.name, use_ec=args.ec)
    print(f"certificate for {args.agency}: {cert_path} (key {key_path}, mode 0600)")
    return EXIT_OK


def cmd_pki_revoke(args: argparse.Namespace) -> int:
    at = None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise UsageError(f"--at {args.at!r} is not an ISO time such as 2026-12-01T08:00:00+07:00") from None
        if at.tzinfo is None:
            raise UsageError(f"--at {args.at!r} names no time zone (add +07:00 or Z)")
    entry = pki_folder.revoke(Path(args.dir), args.agency, at=at, reason=args.reason)
    print(f"revoked {args.agency} (serial {entry.serial:x}) since {entry.at.isoformat()}: {entry.reason.value}")
    return EXIT_OK


def cmd_pki_crl(args: argparse.Namespace) -> int:
    if not 0 < args.days <= 3650:
        raise UsageError(f"--days must be between 0 and 3650, not {args.days}")
    for path in pki_folder.write_crls(Path(args.dir), days=args.days):
        print(f"{path}")
    return EXIT_OK


def cmd_pki_sign_pdf(args: argparse.Namespace) -> int:
    from gateway.cli_format import read_file
    from gateway.fsutil import write_atomic
    from gateway.pdfsig.signing import sample_pdf, sign_pdf

    folder = Path(args.dir)
    code = args.agency
    key = read_file(folder / f"{code}.key", what="the agency's key")
    cert = read_file(folder / f"{code}.pem", what="the agency's certificate")
    data = sample_pdf(f"Van ban cua {code}") if args.input == "-" else read_file(Path(args.input), what="PDF")
    target = Path(args.output)
    if not target.parent.is_dir():
        raise UsageError(f"folder {target.parent} does not exist", where=str(target))
    write_atomic(target, sign_pdf(data, key, cert, field=args.field))
    print(f"{target}: signed by {code} (field {args.field})")
    return EXIT_OK


def cmd_pki_serve(args: argparse.Namespace) -> int:
    from gateway.crl_server import serve

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen {args.listen!r} is not HOST:PORT")
    folder = Path(args.dir)
    pki_folder.load_ca(folder)  # a clear error for a folder without a CA, before listening
    asyncio.run(serve(folder, host, int(port)))
    return EXIT_OK
