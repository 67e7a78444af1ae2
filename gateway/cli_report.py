"""`edxml-gateway report`: the quarterly exchange report over one or many gateways' records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway import config
from gateway.cli_format import EXIT_OK
from gateway.errors import UsageError


def _report_configs(names: list[str]) -> list[tuple[Path, bool]]:
    """Each --config is a file, or a folder holding gateway configurations (*.toml, */gateway.toml);
    with each path, whether it was found in a folder (then what does not fit is skipped, not fatal)."""
    paths: list[tuple[Path, bool]] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            candidates = sorted(set(path.glob("*.toml")) | set(path.glob("*/gateway.toml")))
            found = [candidate for candidate in candidates if _agency_config(candidate)]
            if not found:
                raise UsageError(f"{path} holds no gateway configuration", where=str(path))
            paths.extend((candidate, True) for candidate in found)
        else:
            paths.append((path, False))
    return paths


def _agency_config(path: Path) -> bool:
    """Whether a configuration found in a folder is a gateway's: an axis.toml beside them is not.
    One that cannot be read is kept, so that its error is said rather than skipped."""
    import tomllib

    try:
        return "agency" in tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


def _agency_code(text: str, *, where: str = "--agency") -> str:
    from gateway.edxml import AgencyCode
    from gateway.errors import AgencyCodeError

    try:
        return AgencyCode.lenient(text).text
    except AgencyCodeError as exc:
        raise UsageError(f"{text!r}: {exc.message}", where=where) from None


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import date as date_type

    from gateway import report
    from gateway.store import GatewayStore

    if bool(args.quarter) == bool(args.date_from or args.date_to):
        raise UsageError("give --quarter, or --from and --to")
    if args.quarter:
        period = report.Period.quarter(args.quarter)
    else:
        if not (args.date_from and args.date_to):
            raise UsageError("--from and --to go together")
        try:
            first = date_type.fromisoformat(args.date_from.replace("/", "-"))
            last = date_type.fromisoformat(args.date_to.replace("/", "-"))
        except ValueError as exc:
            raise UsageError(f"dates are yyyy-MM-dd: {exc}") from None
        if last < first:
            raise UsageError("--to is before --from")
        period = report.Period(first, last)
    total = report.Report()
    counted: set[Path] = set()  # one record counts once, however many files name it
    wanted = _agency_code(args.agency) if args.agency else None
    found_wanted = False
    for path, in_folder in _report_configs(args.config):
        settings = config.load(path)
        if settings.agency is None:
            raise UsageError(f"{path} has no [agency] section: not a gateway configuration", where=str(path))
        data_dir = settings.paths.data_dir.resolve()
        if data_dir in counted:
            print(f"edxml-gateway: {path} names a record already counted ({data_dir}): skipped", file=sys.stderr)
            continue
        if not (data_dir / "gateway.sqlite3").is_file():
            if in_folder:  # a copy of the example, a gateway not started yet
                print(f"edxml-gateway: {path}: no gateway database in {data_dir}: skipped", file=sys.stderr)
                continue
            raise UsageError(f"{settings.paths.data_dir} holds no gateway database", where=str(path))
        hosted = [(settings.agency.code, settings.agency.name)] + [(h.code, h.name) for h in settings.hosted]
        hosted = [(_agency_code(code, where=str(path)), name) for code, name in hosted]
        own = hosted[0][0]  # rows from before v7 are the installation's own agency's
        if wanted is not None:
            hosted = [(code, name) for code, name in hosted if code == wanted]
            if not hosted:  # another installation's agency: this record has nothing of it
                continue
            found_wanted = True
        counted.add(data_dir)
        store = GatewayStore(settings.paths.data_dir, looking=True)
        try:
            total.add(report.agency_report(store, hosted, period, own=own))
        finally:
            store.close()
    if wanted is not None and not found_wanted:
        raise UsageError(f"--agency {args.agency}: no configuration given hosts that agency", where="--agency")
    print(report.render(report.as_dict(total, period, by_level=args.by_peer_level), args.format))
    return EXIT_OK
