"""How far a kept replay has come, on disk beside the province, so that ``--resume`` goes on.

The whole quarter takes hours; a machine that stops in the middle (a reboot, a session's end)
kills the load generator and the province's 50 processes as a power cut would. The journal
says which steps of the calendar are done, what the traffic has cost so far (wall time, CPU of
each kind of process, peak RSS), the province's clock at the last checkpoint and the processes
then running. It is written at the end of every step and every CHECKPOINT_SECONDS within one,
each time whole (a new file, synced, renamed over the old), so a cut leaves the last one.

A resumed replay starts the province again from its folders, and does the interrupted step
again from its beginning: what was dropped before the cut is found queued by the gateways (a
drop-folder entry is keyed by its name and content), and a recall found recorded is not asked
twice. Only the work of the interrupted step since its last checkpoint is not counted (at
most CHECKPOINT_SECONDS of wall time and its CPU).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

NAME = "replay-journal.json"
CHECKPOINT_SECONDS = 15.0


@dataclass
class Spent:
    """What the traffic cost, over one stretch of a run or the sum of several."""

    wall: float = 0.0
    cpu_by_kind: dict[str, float] = field(default_factory=dict)
    system: float = 0.0
    generator: float = 0.0  # the load generator's own CPU, and the commands it ran (recall)
    peaks: dict[str, float] = field(default_factory=dict)  # peak RSS (MiB) by kind of process

    def plus(self, other: Spent) -> Spent:
        kinds = self.cpu_by_kind.keys() | other.cpu_by_kind.keys()
        peaks = self.peaks.keys() | other.peaks.keys()
        return Spent(
            wall=self.wall + other.wall,
            cpu_by_kind={k: self.cpu_by_kind.get(k, 0.0) + other.cpu_by_kind.get(k, 0.0) for k in sorted(kinds)},
            system=self.system + other.system,
            generator=self.generator + other.generator,
            peaks={k: max(self.peaks.get(k, 0.0), other.peaks.get(k, 0.0)) for k in sorted(peaks)},
        )


@dataclass
class Journal:
    path: Path
    scale: float
    seed: int
    step: str
    commit: str = "unknown"  # the project's, at the start; a resume at another is said
    setup_seconds: float = 0.0  # build and the first start
    restart_seconds: list[float] = field(default_factory=list)  # each resume's start of the province
    idle_percent: float = 0.0  # CPU of the 50 processes with nothing to do, before the traffic
    disk_before: tuple[int, int] = (0, 0)  # data and log bytes before the traffic
    steps_done: int = 0
    moment: float = 0.0  # the province's clock (POSIX seconds) at the last checkpoint
    pids: list[int] = field(default_factory=list)  # the province's processes of the last start
    earlier: Spent = field(default_factory=Spent)  # the stretches before the last start
    current: Spent = field(default_factory=Spent)  # since the last start, as of the last checkpoint
    finished: bool = False

    @property
    def spent(self) -> Spent:
        return self.earlier.plus(self.current)

    @property
    def interruptions(self) -> int:
        return len(self.restart_seconds)

    @classmethod
    def load(cls, root: Path) -> Journal:
        path = root / NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(f"quarter: {root} holds no {NAME}: it was not made with --keep") from None
        except ValueError as exc:
            raise SystemExit(f"quarter: {path} is not a journal: {exc}") from None
        known = {f.name for f in fields(cls)} - {"path"}
        values = {key: value for key, value in raw.items() if key in known}
        values["earlier"], values["current"] = Spent(**values["earlier"]), Spent(**values["current"])
        values["disk_before"] = tuple(values["disk_before"])
        return cls(path=path, **values)

    def save(self) -> None:
        raw = asdict(self)
        del raw["path"]
        temporary = self.path.with_name(f".{NAME}.tmp")
        with temporary.open("w", encoding="utf-8") as sink:
            json.dump(raw, sink, indent=1)
            sink.flush()
            os.fsync(sink.fileno())
        temporary.replace(self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def resumed(self) -> None:
        """The stretch that was cut becomes part of the earlier ones."""
        self.earlier, self.current = self.spent, Spent()


def stop_leftovers(pids: list[int], root: Path, timeout: float = 30.0) -> list[int]:
    """Kill what still runs of the province's last start (its load generator was killed alone,
    say): processes working in ``root``, so that a pid reused since is left alone. Returns
    the pids killed."""
    killed = []
    for pid in pids:
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue  # gone, or not ours to look at
        if cwd.is_relative_to(root):
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
