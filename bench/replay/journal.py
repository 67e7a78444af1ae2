"""How far a kept replay has come, on disk beside the province, so that ``--resume`` goes on.

The whole quarter takes hours; a machine that stops in the middle (a reboot, a session's end)
kills the load generator and the province's 50 processes as a power cut would. The journal
says which steps of the calendar are done, what the traffic has cost so far (wall time, CPU of
each kind of process, peak RSS), the province's clock at the last checkpoint and the processes
then running. It is written at the end of every step and every CHECKPOINT_SECONDS within one,
each time whole (a new file, synced, renamed over the old), so a cut leaves the last one.

A resumed replay starts the province again from its folders, with its clock a minute after
the latest it saw (the journal's, or the last line of its logs), and does the interrupted step
again from its beginning (bench/replay/steps.py: all of it may be done twice). The restart is
counted as traffic, wall time and CPU: the province takes up the cut step as it starts. What
is not counted is the cut step's work since its last checkpoint: at most CHECKPOINT_SECONDS
of wall time and its CPU, or one recall command.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bench.replay.cost import Spent

NAME = "replay-journal.json"


class NoJournal(Exception):
    """The folder holds no journal this replay can go on with; the message says why."""


CHECKPOINT_SECONDS = 15.0


@dataclass
class Journal:
    path: Path
    scale: float
    seed: int
    step: str
    commits: list[str] = field(default_factory=list)  # the project's, at the start of each stretch
    through: str | None = None  # the last day replayed (--through, ISO), or None for the whole quarter
    since: str | None = None  # the first day replayed (--from, ISO), or None: from the quarter's first
    traffic_began: bool = False  # before, a cut leaves nothing worth resuming (no idle, no disk measured)
    setup_seconds: float = 0.0  # build and the first start
    restart_seconds: list[float] = field(default_factory=list)  # each resume's start of the province
    idle_percent: float = 0.0  # CPU of the 50 processes with nothing to do, before the traffic
    disk_before: tuple[int, int] = (0, 0)  # data and log bytes before the traffic
    steps_done: int = 0
    moment: float = 0.0  # the province's clock (POSIX seconds) at the last checkpoint, or ahead of it
    pids: list[int] = field(default_factory=list)  # the province's processes of the last start
    earlier: Spent = field(default_factory=Spent)  # the stretches before the last start
    current: Spent = field(default_factory=Spent)  # since the last start, as of the last checkpoint
    finished: bool = False

    @property
    def spent(self) -> Spent:
        return self.earlier.plus(self.current)

    @property
    def interruptions(self) -> int:
        """Every start after the first, one whose restart failed too (it has no restart_seconds)."""
        return max(0, len(self.commits) - 1)

    @classmethod
    def load(cls, root: Path) -> Journal:
        path = root / NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)} - {"path"}
            values = {key: value for key, value in raw.items() if key in known}
            values["earlier"], values["current"] = Spent(**values["earlier"]), Spent(**values["current"])
            values["disk_before"] = tuple(values["disk_before"])
            return cls(path=path, **values)
        except FileNotFoundError:
            raise NoJournal(f"{root} holds no {NAME}: it was not made with --keep") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise NoJournal(f"{path} is not a journal of this replay: {exc!r}") from None

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
