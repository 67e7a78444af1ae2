"""The replay's figures: what the traffic cost (from the journal, over every stretch of the run),
the report against the plan, the ledger's verdict; printed as a table and one JSON line."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

from bench.replay import floor, ledger, traffic
from bench.replay.journal import Journal
from bench.tools.profiling import summarize


def compute(
    journal: Journal,
    plan: traffic.Plan,
    province: set[str],
    report: dict,
    verdict: ledger.Verdict,
    disk: tuple[int, int],
    the_floor: floor.Floor,
    quarter_deliveries: int,
) -> dict:
    """``province``: the codes of the province's agencies (the report's side); ``disk``: data
    and log bytes now; ``the_floor``: the format work's cost measured after the traffic;
    ``quarter_deliveries``: the whole quarter's at this scale (``plan``'s, or more when the
    plan is a stretch of it, --from or --through), which the projections to scale 1 count."""
    spent = journal.spent
    printed = {
        "sent": report["sent"]["total"],
        "sent_with_paper": report["sent"]["with_paper"],
        "received": report["received"]["total"],
        "received_digitized": report["received"]["digitized"],
    }
    totals = plan.totals(province)
    deliveries = plan.deliveries
    answers = sum(len(step.answers) + len(step.carried) for step in plan.steps)
    recalled = sum(len(d.recipients) for step in plan.steps for d in step.recalls)
    cpu_total = sum(spent.cpu_by_kind.values())
    data_bytes, log_bytes = (after - before for after, before in zip(disk, journal.disk_before, strict=True))
    wall = spent.wall
    floor_ms = the_floor.per_delivery(len(plan.documents), deliveries, deliveries + answers + recalled)
    cpu_ms = 1000 * cpu_total / deliveries
    return {
        "scale": journal.scale,
        "seed": journal.seed,
        "step": journal.step,
        "since": journal.since,  # the stretch's first day (--from), or None: from the quarter's first
        "through": journal.through,  # the stretch's last day (--through), or None: to the quarter's last
        **printed,
        "report_matches_plan": printed == totals,
        "documents": len(plan.documents),
        "deliveries": deliveries,
        "lost": verdict.lost,
        "duplicated": verdict.duplicated,
        "unexpected": verdict.unexpected,
        "receipts_missing": verdict.receipts_missing,
        "statuses_missing": verdict.statuses_missing,
        "statuses_repeated": verdict.statuses_repeated,
        "errors_logged": verdict.errors_logged,
        "answers": answers,
        "recalls": sum(len(step.recalls) for step in plan.steps),
        "report_statuses": {
            "refused_by_recipients": sum(report["statuses"]["refused_by_recipients"].values()),
            "finished": report["statuses"]["finished"],
            "accepted_within_1_working_day": report["statuses"]["accepted_within_1_working_day"],
            "recalls_sent": report["statuses"]["recalls_sent"],
        },
        "steps": len(plan.days),
        "setup_seconds": round(journal.setup_seconds, 1),
        # the run cut (the machine stopped) and resumed with --resume: each restart of the
        # province is in the wall time and its CPU (it takes up the cut step's work as it
        # starts), and each cut loses what the cut step did after its last checkpoint
        "interruptions": journal.interruptions,
        "commits": journal.commits,  # the project's, at the start of each stretch
        "python": interpreter(),  # every process's (the builds of one version differ by a tenth and more)
        "restart_seconds": [round(s, 1) for s in journal.restart_seconds],
        "wall_seconds": round(wall, 1),
        "deliveries_per_second": round(deliveries / wall, 1),
        "cpu_ms_per_delivery": round(cpu_ms, 2),
        # every message carried: each delivered document, its 01, each answer and recall
        "cpu_ms_per_message": round(1000 * cpu_total / (2 * deliveries + answers + recalled), 2),
        "cpu_system_share": round(spent.system / cpu_total, 3),
        # of the machine's cores over the traffic, the share the hypervisor took (compare runs with it)
        "steal_share": round(spent.stolen / (wall * (os.cpu_count() or 1)), 3),
        "cpu_ms_per_delivery_by_kind": {k: round(1000 * v / deliveries, 2) for k, v in spent.cpu_by_kind.items()},
        "idle_cpu_percent_of_a_core": round(journal.idle_percent, 1),
        # what the processes would have used with nothing to do for as long as the traffic took
        "idle_share_of_cpu": round(journal.idle_percent / 100 * wall / cpu_total, 3),
        "generator_cpu_ms_per_delivery": round(1000 * spent.generator / deliveries, 2),
        "peak_rss_mib": {k: round(v, 1) for k, v in sorted(spent.peaks.items())},
        "disk_mib_per_1000_documents": round(data_bytes / 2**20 / len(plan.documents) * 1000, 1),
        "log_mib_per_1000_documents": round(log_bytes / 2**20 / len(plan.documents) * 1000, 1),
        # the whole quarter at scale 1, at this run's pace (a stretch's too)
        "projected_full_scale_seconds": round(wall / journal.scale * quarter_deliveries / deliveries),
        # bench/replay/floor.py: the format work alone, one process, hot; no run can go below it
        "floor_cpu_ms_per_delivery": round(floor_ms, 2),
        "floor_ms_per_operation": {k: round(v, 3) for k, v in dataclasses.asdict(the_floor).items()},
        # CPU per delivery over the floor's (not bench/e2e.py's achieved/floor, a ratio of rates)
        "cpu_over_floor": round(cpu_ms / floor_ms, 2),
        # the quarter's deliveries at scale 1, as projected_full_scale_seconds counts them
        "floor_full_scale_seconds": round(floor_ms * quarter_deliveries / journal.scale / 1000 / floor.CORES),
        "expected": totals,
    }


def interpreter() -> str:
    """The Python this generator runs, and so the province's processes (each started with its
    ``sys.executable``): its version, its binary and whether libpython is a shared library beside
    it (pyenv's default build) or linked into it (Debian's, built with PGO and LTO), which alone
    moved the replay's CPU per delivery by a fifth."""
    try:
        shared = "libpython" in Path("/proc/self/maps").read_text()
    except OSError:
        shared = None
    linking = {True: ", libpython shared", False: ", libpython linked in", None: ""}[shared]
    binary = os.path.realpath(sys.executable)
    return f"{platform.python_implementation()} {platform.python_version()}, {binary}{linking}"


def show(figures: dict, verdict: ledger.Verdict) -> None:
    expected = figures["expected"]
    rows = [
        ("sent (report / plan)", f"{figures['sent']:,} / {expected['sent']:,}"),
        ("  with a paper copy", f"{figures['sent_with_paper']:,} / {expected['sent_with_paper']:,}"),
        ("received (report / plan)", f"{figures['received']:,} / {expected['received']:,}"),
        ("  digitised from paper", f"{figures['received_digitized']:,} / {expected['received_digitized']:,}"),
        ("documents, deliveries", f"{figures['documents']:,}, {figures['deliveries']:,}"),
        ("lost, duplicated, 01 missing", f"{figures['lost']}, {figures['duplicated']}, {figures['receipts_missing']}"),
        ("answers (02-06, 15), recalls (13)", f"{figures['answers']:,}, {figures['recalls']}"),
        ("statuses missing, repeated", f"{figures['statuses_missing']}, {figures['statuses_repeated']}"),
        ("error lines in the 50 logs", f"{figures['errors_logged']}"),
        *((f"  report: {key.replace('_', ' ')}", f"{value:,}") for key, value in figures["report_statuses"].items()),
        ("calendar steps", f"{figures['steps']} ({figures['step']}){_stretch(figures)}"),
        ("interpreter of every process", figures["python"]),
        ("setup (build, start)", f"{figures['setup_seconds']} s"),
        *_cuts(figures),
        ("wall time of the traffic", f"{figures['wall_seconds']} s"),
        ("deliveries per second", f"{figures['deliveries_per_second']}"),
        ("CPU ms per delivery, all processes", f"{figures['cpu_ms_per_delivery']}"),
        ("CPU ms per message (document, 01, answer)", f"{figures['cpu_ms_per_message']}"),
        ("  of it in the kernel", f"{figures['cpu_system_share']:.0%}"),
        ("machine's CPU taken by the hypervisor (steal)", f"{figures['steal_share']:.0%}"),
        *((f"  {kind}", f"{ms}") for kind, ms in figures["cpu_ms_per_delivery_by_kind"].items()),
        (
            "idle CPU of all processes (% of a core)",
            f"{figures['idle_cpu_percent_of_a_core']}; {figures['idle_share_of_cpu']:.0%} of the traffic's CPU",
        ),
        ("this generator, CPU ms per delivery", f"{figures['generator_cpu_ms_per_delivery']}"),
        *((f"peak RSS, {kind} (MiB)", f"{mib}") for kind, mib in figures["peak_rss_mib"].items()),
        (
            "disk per 1,000 documents, data; logs (MiB)",
            f"{figures['disk_mib_per_1000_documents']}; {figures['log_mib_per_1000_documents']}",
        ),
        ("projected at scale 1", f"{figures['projected_full_scale_seconds']:,} s"),
        (
            "floor: format work alone, CPU ms per delivery",
            f"{figures['floor_cpu_ms_per_delivery']} (the run's CPU {figures['cpu_over_floor']} times it);"
            f" at scale 1 on 2 cores {figures['floor_full_scale_seconds']:,} s",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    for example in verdict.examples:
        print(f"  {example}")
    print(json.dumps({k: v for k, v in figures.items() if k != "expected"}, ensure_ascii=False))


def _stretch(figures: dict) -> str:
    since, through = figures.get("since"), figures["through"]
    if since is None and through is None:
        return ""
    first, last = traffic.stretch_window(since, through)
    asked = ", ".join(option for option, _ in traffic.stretch_options(since, through))
    return f", the quarter's stretch {first} to {last} ({asked}; the report over it)"


def _cuts(figures: dict) -> list[tuple[str, str]]:
    """The table's row for a run cut and resumed; none for a run in one stretch."""
    if not figures["interruptions"]:
        return []
    return [("cuts, each resumed (--resume)", f"{figures['interruptions']}; restarts {figures['restart_seconds']} s")]


def show_profiles(folder: Path) -> None:
    for phase, where in (("traffic", folder), ("idle", folder / "idle")):
        for raw in sorted(where.glob("*.txt")):
            print(f"\nprofile of {raw.stem}, {phase} (share of samples, inclusive):")
            for name, share in summarize(raw, top=24):
                print(f"  {share:5.1f} %  {name}")
