"""The province's processes: started with the shifted clock, their logs written straight to files
(a quarter's log lines are millions: nothing of them is kept in memory here); and those a cut
left running, stopped before a resumed run starts the province again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.replay.cost import tree_cpu, tree_cpu_seconds
from gateway.processes import terminate


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


def stop_leftovers(pids: list[int], clock_file: Path, timeout: float = 30.0) -> list[int]:
    """Kill what still runs of the province's last start (its load generator was killed alone,
    say): those of ``pids`` that read the replay's clock ``clock_file``, so that a pid reused
    since by another process is left alone. Returns the pids killed."""
    killed = []
    mark = f"SHIFTED_CLOCK_FILE={clock_file}".encode()
    for pid in pids:
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to look at
        if mark in environment:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + timeout
    while any(_running(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.1)
    return killed


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (dead, its parent not told yet) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
