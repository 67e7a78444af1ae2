"""`edxml-gateway bridge`: a provincial axis's bridge to its upstream, as monitoring reads it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.cli_errors import unknown_reason
from gateway.cli_format import emit


def cmd_bridge(args: argparse.Namespace) -> int:
    from gateway.axis import bridge_status
    from gateway.axis import config as axis_config
    from gateway.daemon.health import Level

    try:
        level, report = bridge_status.check(axis_config.load(Path(args.config)))
    except Exception as exc:  # could not look: UNKNOWN (3), said where monitoring reads
        said = unknown_reason(exc)
        print(f"edxml-gateway: {said}", file=sys.stderr)
        unknown = {"status": "UNKNOWN", "problems": [{"level": "UNKNOWN", "text": said}]}
        emit(json.dumps(unknown, ensure_ascii=False) if args.json else f"UNKNOWN: {said}")
        return Level.UNKNOWN
    emit(json.dumps(report, ensure_ascii=False) if args.json else bridge_status.render_text(report))
    return level
