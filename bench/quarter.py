"""Tiền Giang's quarter, replayed: the province's Q3 2023 volume through the real exchange.

    python bench/quarter.py --scale 0.01            # 1,176 sent, 5,383 received, checks itself (as CI runs it)
    python bench/quarter.py                         # the whole quarter: 117,578 sent, 538,345 received
    python bench/quarter.py --scale 0.1 --seed 7 --keep /tmp/tg   # leaves the province in /tmp/tg
    python bench/quarter.py --resume /tmp/tg        # goes on with a kept replay the machine cut
    python bench/quarter.py --through 2023-08-11     # the first six weeks at scale 1, checked as a stretch
    python bench/quarter.py --from 2023-08-14        # the rest of the quarter after that stretch

A national axis; Tiền Giang's provincial axis bridged to it; under it the province's 45
installations hosting its 1,174 agency codes (bench/replay/shape.py says where the split comes
from); on the national axis three installations standing for the ministries, the Government
Office and other provinces. Every one is a real `edxml-gateway` process on the packaged
defaults, each agency signing with its own certificate (bench/replay/build.py).

The traffic (bench/replay/traffic.py) is planned from the seed so that the province's totals
are the published ones (scaled and rounded below --scale 1). The quarter is compressed in
time: every process runs under a shifted wall clock (bench/replay/clock.py) that the load
generator steps through the quarter's working days (--step day; --step week steps to the
first working day of each week, the default below --scale 0.1, where a day holds too few
documents to be worth a step). At each step the day's documents are dropped as job folders
into their senders' drop folders, promulgated that day; the gateways sign them at the day's
08:00 onwards; the step ends when every delivery of the day is in its inbox and every 01 back.

The check: a ledger of every planned delivery against every inbox (0 lost, 0 duplicated,
every 01 back at its sender), and `edxml-gateway report --config <the 45 installations'
folder> --quarter 2023Q3` printing the planned totals. Exit status 0 only when both hold.

A kept replay (--keep) writes a journal beside the province at every step and every 15 s
(bench/replay/journal.py). When the machine stops in the middle (the whole quarter takes
hours), `--resume DIR` starts the province again and goes on from the step that was cut, with
the same scale, seed and figures so far; the figures say how many cuts the run went through.
`--interrupt-in-step N` kills the province and the generator with SIGKILL halfway through
step N's deliveries, as such a cut would (CI's run tests --resume with it).

`--through DAY` replays the working days up to DAY and closes the stretch with that day's
owed answers, as the quarter's last evening closes the quarter; the checks cover the stretch
(the ledger of its deliveries; the report from 2023-07-01 to DAY against the plan's totals for
it) and the projection to scale 1 counts the whole quarter's deliveries at the stretch's pace.
The days before DAY are the quarter's own plan, so `--resume DIR --through DAY` makes a kept
run of the whole quarter, cut before the end of DAY, into a checked stretch.

`--from DAY` replays the quarter from DAY on, without the answers owed from the calendar's step
before (a stretch through that day carries them), checked the same way with its report from
DAY. Two stretches at the same --scale, --seed and --step, `--through` the step before DAY and
`--from DAY`, share no document, delivery, answer or recall and together are the quarter's whole
plan: its every delivery carried and checked on machines that do not stay up for all of it. They
split the plan and the checks, not the run: the second starts from empty databases, without the
history the first left, so its pace is not that of the quarter's later weeks in one run.

Printed: a table and one JSON line (wall time, deliveries per second, CPU ms per delivery over
every process with its 01, peak RSS per kind of process, disk per 1,000 documents, and the
wall time projected to --scale 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay.clock import ShiftedClock
from bench.replay.traffic import calendar, stretch_options

ROOT_ENV = "QUARTER_REPLAY_ROOT"


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no day: give YYYY-MM-DD") from None


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, help="share of the published volume (default 1)")
    parser.add_argument("--seed", type=int, help="of the traffic's plan (default 2023)")
    parser.add_argument("--step", choices=("day", "week"), help="how the clock steps (default: day from --scale 0.1)")
    parser.add_argument("--keep", type=Path, help="build the province in this (new) folder and leave it there")
    parser.add_argument("--resume", type=Path, help="go on with the replay kept in this folder, cut before its end")
    parser.add_argument(
        "--through",
        type=_day,
        metavar="YYYY-MM-DD",
        help="replay the quarter's working days up to this one and check that stretch (its report to this"
        " day, from 2023-07-01 or --from); with --resume, where the resumed replay stops",
    )
    parser.add_argument(
        "--from",
        dest="since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="replay the quarter from this day of the calendar on and check that stretch (its report from"
        " this day to 2023-09-30 or --through): the rest of the quarter after a stretch --through the"
        " calendar's step before, at the same --scale, --seed and --step",
    )
    parser.add_argument(
        "--interrupt-in-step", type=int, metavar="N", help="kill everything halfway through step N (tests --resume)"
    )
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of both axes and three gateways")
    parser.add_argument("--stall-seconds", type=float, default=180.0, help="fail when nothing moves this long")
    args = parser.parse_args()
    if args.resume is not None:
        begun_with = (("--keep", args.keep), ("--scale", args.scale), ("--seed", args.seed), ("--step", args.step))
        given = [option for option, value in (*begun_with, ("--from", args.since)) if value is not None]
        if given:  # the journal holds the run's scale, seed, step and first day; the folder is the run's
            parser.error(f"--resume goes on with the replay as it was begun: no {', '.join(given)} with it")
        return args
    args.scale = 1.0 if args.scale is None else args.scale
    args.seed = 2023 if args.seed is None else args.seed
    if args.interrupt_in_step is not None and args.keep is None and args.resume is None:
        parser.error("--interrupt-in-step needs --keep (or --resume): the cut replay is resumed from that folder")
    if not 0 < args.scale <= 1:
        parser.error("--scale is in (0, 1]")
    args.step = args.step or ("day" if args.scale >= 0.1 else "week")
    days = calendar(args.step)
    for option, day in stretch_options(args.since, args.through):
        if date.fromisoformat(day) not in days:
            parser.error(f"{option} {day} is not a day the calendar steps to with --step {args.step}")
    if args.since is not None and args.through is not None and args.since > args.through:
        parser.error(f"--from {args.since} is after --through {args.through}")
    return args


def main() -> int:
    args = arguments()
    if ROOT_ENV not in os.environ:  # first pass: make the clock, then run again under it
        if args.resume is not None:
            root = args.resume.resolve()
            if not (root / "clock" / "clock-offset").is_file():
                print(f"quarter: --resume {args.resume} holds no replay (no clock/clock-offset)", file=sys.stderr)
                return 2
            env = {**os.environ, **ShiftedClock(root / "clock").env, ROOT_ENV: str(root)}
            os.execve(sys.executable, [sys.executable, *sys.argv], env)  # noqa: S606 (this script again)
        if args.keep is not None:
            if args.keep.exists() and any(args.keep.iterdir()):
                print(f"quarter: --keep {args.keep} is not empty", file=sys.stderr)
                return 2
            root = args.keep.resolve()
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(tempfile.mkdtemp(prefix="quarter-"))
        clock = ShiftedClock.build(root / "clock")
        env = {**os.environ, **clock.env, ROOT_ENV: str(root)}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)  # noqa: S606 (this script again, as it was run)
    from bench.replay.run import replay

    root = Path(os.environ[ROOT_ENV])
    try:
        return replay(root, args)
    finally:
        if args.keep is None and args.resume is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
