"""py-spy (pip install py-spy) sampling running processes while a benchmark runs, and the
summary of its folded stacks: our own functions and the library calls they make, by inclusive
share of the samples."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# --gil: sample only the thread holding the GIL, which is where Python spends CPU; time waiting
# for fsync or the network is left out (BENCH_PROFILE=wall puts it back).
PY_SPY_MODE = [] if os.environ.get("BENCH_PROFILE") == "wall" else ["--gil"]


def start_profilers(processes: dict[str, int], folder: Path | None) -> list[subprocess.Popen]:
    """py-spy (pip install py-spy) sampling each process while documents flow, if asked."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--nonblocking",
                *PY_SPY_MODE,
                "--format",
                "raw",
                "--output",
                str(folder / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in processes.items()
    ]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(30)


def summarize(raw: Path, top: int = 14) -> list[tuple[str, float]]:
    """Our own functions (gateway/…) and the library calls they make, by inclusive share of the
    samples of a folded py-spy profile; generic frames (threads, the event loop) are left out."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        frames = stack.split(";")
        named = set()
        for position, frame in enumerate(frames):
            function, _, where = frame.partition(" (")
            module = where.split(":")[0]
            ours = module.startswith("gateway/") and module not in ("gateway/__main__.py", "gateway/cli.py")
            callee_of_ours = position > 0 and frames[position - 1].partition(" (")[2].startswith("gateway/")
            if ours or callee_of_ours:
                named.add(f"{function} ({module})")
        for name in named:
            inclusive[name] = inclusive.get(name, 0) + int(count)
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])
    return [(name, round(100 * count / total, 1)) for name, count in ranked[:top]] if total else []
