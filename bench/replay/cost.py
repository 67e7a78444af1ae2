"""What the replay's processes cost, as the kernel counts it: CPU from /proc/PID/stat (with the
children each has waited for), peak RSS (VmHWM) from /proc/PID/status; summed over a stretch of
the run (Meter) and over the stretches of a run that was cut and resumed (Spent.plus)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.replay.processes import Process

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Spent:
    """What the traffic cost, over one stretch of a run or the sum of several."""

    wall: float = 0.0
    cpu_by_kind: dict[str, float] = field(default_factory=dict)
    system: float = 0.0
    generator: float = 0.0  # the load generator's own CPU, and the commands it ran (recall)
    peaks: dict[str, float] = field(default_factory=dict)  # peak RSS (MiB) by kind of process
    # CPU seconds the hypervisor gave other machines while ours wanted it (steal, /proc/stat), on
    # all cores: a virtual machine's speed is not its own, and this says how much was missing
    stolen: float = 0.0

    def plus(self, other: Spent) -> Spent:
        kinds = self.cpu_by_kind.keys() | other.cpu_by_kind.keys()
        peaks = self.peaks.keys() | other.peaks.keys()
        return Spent(
            wall=self.wall + other.wall,
            cpu_by_kind={k: self.cpu_by_kind.get(k, 0.0) + other.cpu_by_kind.get(k, 0.0) for k in sorted(kinds)},
            system=self.system + other.system,
            generator=self.generator + other.generator,
            peaks={k: max(self.peaks.get(k, 0.0), other.peaks.get(k, 0.0)) for k in sorted(peaks)},
            stolen=self.stolen + other.stolen,
        )


class Meter:
    """What the province's processes and the load generator have cost since it was made, or
    (``from_start``, a resumed run) since the processes started at ``began``: the catch-up a
    restarted province does while it starts is traffic too."""

    def __init__(self, processes: list[Process], *, from_start: bool = False, began: float | None = None) -> None:
        self.processes = processes
        self._began = time.monotonic() if began is None else began
        self._cpu = {id(p): 0.0 if from_start else p.cpu_seconds() for p in processes}
        self._system = 0.0 if from_start else sum(p.system_seconds() for p in processes)
        self._generator = own_cpu_seconds()
        self._stolen = stolen_seconds()

    def spent(self) -> Spent:
        cpu_by_kind: dict[str, float] = {}
        peaks: dict[str, float] = {}
        for process in self.processes:
            seconds = process.cpu_seconds() - self._cpu[id(process)]
            cpu_by_kind[process.kind] = cpu_by_kind.get(process.kind, 0.0) + seconds
            peaks[process.kind] = max(peaks.get(process.kind, 0.0), process.peak_rss_mib())
        return Spent(
            wall=time.monotonic() - self._began,
            cpu_by_kind=cpu_by_kind,
            system=sum(p.system_seconds() for p in self.processes) - self._system,
            generator=own_cpu_seconds() - self._generator,
            peaks=peaks,
            stolen=stolen_seconds() - self._stolen,
        )


def stolen_seconds() -> float:
    """The machine's steal time so far, all cores (0 where the kernel does not count it)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / TICKS if len(fields) > 8 else 0.0  # cpu user nice system idle iowait irq softirq steal


def own_cpu_seconds() -> float:
    """This process's CPU and that of the commands it ran and waited for (recall)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``, of its children it has waited for, and of those still running."""
    return sum(tree_cpu(pid))


def tree_cpu(pid: int) -> tuple[float, float]:
    """:func:`tree_cpu_seconds` as (user, system): the kernel's share is where fsync, file and
    socket work show."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    user = (int(fields[11]) + int(fields[13])) / TICKS  # utime cutime
    system = (int(fields[12]) + int(fields[14])) / TICKS  # stime cstime
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            child_user, child_system = tree_cpu(int(child))
            user, system = user + child_user, system + child_system
    return user, system
