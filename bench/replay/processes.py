"""The province's processes: started with the shifted clock, their logs written straight to files
(a quarter's log lines are millions: nothing of them is kept in memory here), and what the
kernel says each one cost: CPU from /proc/PID/stat, peak RSS (VmHWM) from /proc/PID/status."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.replay.journal import Spent
from gateway.processes import terminate

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    kind: str  # national axis, provincial axis, province gateway, outside gateway
    name: str
    log: Path
    popen: subprocess.Popen
    _read: int = field(default=0, repr=False)
    _events: list[dict] = field(default_factory=list, repr=False)

    @classmethod
    def start(cls, kind: str, name: str, args: list[str], *, cwd: Path, env: dict[str, str]) -> Process:
        log = cwd / ("axis.log" if args[0] == "axis" else "gateway.log")
        with log.open("ab") as sink:
            written = sink.tell()  # a resumed replay's process writes after the earlier start's lines
            popen = subprocess.Popen(
                [sys.executable, "-P", "-m", "gateway", *args],
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            )
        return cls(kind, name, log, popen, _read=written)

    def wait_for(self, event: str, timeout: float = 120.0) -> dict:
        """The first log line with this event (read from the file as it grows)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.log.open("rb") as source:
                source.seek(self._read)
                chunk = source.read()
            complete = chunk.rfind(b"\n") + 1
            self._read += complete
            for line in chunk[:complete].splitlines():
                if event.encode() in line:
                    try:
                        self._events.append(json.loads(line))
                    except ValueError:
                        continue
            for seen in self._events:
                if seen.get("event") == event:
                    return seen
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.kind} {self.name} exited ({self.popen.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} {self.name}: no {event} within {timeout:.0f} s; see {self.log}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """The process's CPU and its children's (a gateway's PDF reader runs in one)."""
        return tree_cpu_seconds(self.popen.pid)

    def system_seconds(self) -> float:
        """The part of :meth:`cpu_seconds` spent in the kernel."""
        return tree_cpu(self.popen.pid)[1]

    def peak_rss_mib(self) -> float:
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, timeout: float = 30.0) -> None:
        terminate(self.popen, timeout)


class Meter:
    """What the province's processes and the load generator have cost since it was made."""

    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self._began = time.monotonic()
        self._cpu = {id(p): p.cpu_seconds() for p in processes}
        self._system = sum(p.system_seconds() for p in processes)
        self._generator = own_cpu_seconds()

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
        )


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
