"""What the load generator does at each step of the calendar, as the province's document systems
and clerks would: job folders and status files dropped, recalls asked with the CLI; and the
wait for the exchange to catch up, writing the journal meanwhile.

Everything here may be done again after a cut (--resume does the cut step again from its
beginning): a job folder or status file dropped again is the same entry, name and content,
which its gateway finds queued; a recall asked again goes only to the recipients it had not
reached. Drops are not synced: a resume trusts what a killed generator wrote, as the kernel
keeps it (a killed process or machine session), not what a power cut of the disk might lose.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bench.replay import journal, traffic
from bench.replay.build import Folders
from bench.replay.processes import Process
from bench.replay.progress import Key, Progress
from bench.replay.shape import Shape
from gateway.daemon.inbox import folder_name

RECALLS_AT_ONCE = 8
RECALL_TIMEOUT_SECONDS = 120
ATTACHMENT = b"%PDF-1.4\n% a scanned page stands here\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"  # 4 KB


def drop(folders: Folders, the_shape: Shape, document: traffic.Planned) -> None:
    """A job folder written as a document system should: hidden first, renamed when complete."""
    dropped = _job_folder(folders, the_shape, document)
    if dropped.exists():
        return  # dropped before a cut, not taken yet: its gateway takes it when it starts
    hidden = dropped.with_name(f".{dropped.name}")
    shutil.rmtree(hidden, ignore_errors=True)  # half written when a cut came
    hidden.mkdir()
    for name, content in _job_files(the_shape, document).items():
        (hidden / name).write_bytes(content)
    hidden.rename(dropped)


def answer(folders: Folders, the_shape: Shape, planned: traffic.Answer) -> None:
    """A status file in the recipient's drop folder, as its document system writes one."""
    dropped, content = _status_file(folders, the_shape, planned)
    hidden = dropped.with_name(f".{dropped.name}")
    hidden.write_bytes(content)
    hidden.rename(dropped)


def repair(folders: Folders, the_shape: Shape, step: traffic.Step) -> int:
    """Before a resumed province starts: the cut step's entries still in the drop folders
    written whole again where they differ from what was dropped. Drops are not synced, and a
    machine that stopped without writing its page cache out may have left a renamed entry
    empty or short, which its gateway would refuse. Returns how many were written again."""
    repaired = 0
    for document in step.documents:
        dropped = _job_folder(folders, the_shape, document)
        if not dropped.is_dir():
            continue  # taken by its gateway, or never dropped
        for name, content in _job_files(the_shape, document).items():
            if _content(dropped / name) != content:
                (dropped / name).write_bytes(content)
                repaired += 1
    for planned in (*step.carried, *step.answers):
        dropped, content = _status_file(folders, the_shape, planned)
        if dropped.is_file() and _content(dropped) != content:
            dropped.write_bytes(content)
            repaired += 1
    return repaired


def _job_folder(folders: Folders, the_shape: Shape, document: traffic.Planned) -> Path:
    return folders.outbox(the_shape, document.sender) / f"rp-{document.number:06d}"


def _job_files(the_shape: Shape, document: traffic.Planned) -> dict[str, bytes]:
    job = {
        "document_id": document.document_id,
        "to": list(document.recipients),
        "subject": f"Văn bản số {document.number} của {the_shape.agencies[document.sender].name}",
        "code_number": str(document.number),
        "code_notation": "VT-RP",
        "promulgation_date": document.day.isoformat(),
        "paper": document.paper,
        "digitized": document.digitized,
    }
    return {"document.json": json.dumps(job, ensure_ascii=False).encode(), "van-ban.pdf": ATTACHMENT}


def _status_file(folders: Folders, the_shape: Shape, planned: traffic.Answer) -> tuple[Path, bytes]:
    folder = folder_name(planned.document.sender, planned.document.document_id, "")
    body = {"answers": folder, "code": planned.code, "staff": "Văn thư"}
    if planned.description:
        body["description"] = planned.description
    outbox = folders.outbox(the_shape, planned.recipient)
    return outbox / f"{folder}-{planned.code}.status.json", json.dumps(body, ensure_ascii=False).encode()


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def recall(folders: Folders, the_shape: Shape, documents: list[traffic.Planned], tick: Callable[[], None]) -> None:
    """A step's recalls, each asked with the CLI as a clerk would, RECALLS_AT_ONCE commands at a
    time: each command's start (a second and more of wall time on a loaded machine) overlaps the
    others' instead of adding up, which at scale 1 (about seven a day) is minutes of the run."""
    waiting = list(documents)
    running: list[tuple[traffic.Planned, subprocess.Popen]] = []
    try:
        while waiting or running:
            while waiting and len(running) < RECALLS_AT_ONCE:
                document = waiting.pop(0)
                running.append((document, _start_recall(folders, the_shape, document)))
            document, process = running[0]
            try:
                _, stderr = process.communicate(timeout=RECALL_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"recall of {document.document_id} took over {RECALL_TIMEOUT_SECONDS} s") from None
            running.pop(0)
            if process.returncode != 0:
                raise RuntimeError(f"recall of {document.document_id} failed: {stderr[-1000:]}")
            tick()
    finally:  # a failed step leaves no command behind (a recall asked again resumes where it stopped)
        for _, process in running:
            process.kill()
            process.communicate()


def _start_recall(folders: Folders, the_shape: Shape, document: traffic.Planned) -> subprocess.Popen:
    agency = the_shape.agencies[document.sender]
    config = folders.installation(the_shape.installations[agency.installation]) / "gateway.toml"
    command = ["recall", "--config", str(config), document.document_id, "--reason", "Văn bản ban hành nhầm"]
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "gateway", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class Owed:
    """A step's answers (02, 03) waiting for the documents they answer: each dropped as soon as
    its document is in its recipient's inbox, while the rest of the day is still delivered,
    as a clerk answers what has come in; not all at once after the day's last delivery."""

    def __init__(self, folders: Folders, the_shape: Shape, answers: list[traffic.Answer], pace: Pace) -> None:
        self.folders, self.the_shape, self.pace = folders, the_shape, pace
        self._owed: dict[Key, list[traffic.Answer]] = {}
        for planned in answers:
            key = (planned.recipient, planned.document.sender, planned.document.document_id)
            self._owed.setdefault(key, []).append(planned)
        pace.progress.watch(self._owed)

    def drop_arrived(self) -> None:
        """The answers of the documents delivered since the last look."""
        self.drop(self.pace.progress.take_arrived())

    def drop(self, arrived: list[Key]) -> None:
        for key in arrived:
            for planned in self._owed.pop(key, ()):
                answer(self.folders, self.the_shape, planned)
                self.pace.tick()

    def drop_the_rest(self) -> None:
        """The answers of documents the watch did not see delivered (one its recipient's
        gateway refused, say), dropped once the day's deliveries are all settled, as before."""
        self.drop(list(self._owed))


@dataclass
class Expected:
    deliveries: int = 0
    receipts: int = 0  # 01 for every delivery, and every answer
    recalls: int = 0  # 13 at every recipient of a recalled document

    def add_documents(self, step: traffic.Step) -> None:
        deliveries = sum(len(d.recipients) for d in step.documents)
        self.deliveries += deliveries
        self.receipts += deliveries + len(step.carried)

    def add_answers(self, step: traffic.Step) -> None:
        self.receipts += len(step.answers)
        self.recalls += sum(len(d.recipients) for d in step.recalls)


@dataclass
class Pace:
    """Waits for the exchange to catch up with what was dropped, writing the journal at least
    every journal.CHECKPOINT_SECONDS (``tick``, also between drops); ``cut_at``: the deliveries
    after which the whole province and this generator are killed, as a power cut would
    (--interrupt-in-step, how --resume is tested)."""

    progress: Progress
    stall_seconds: float
    checkpoint: Callable[[], None]
    processes: list[Process]
    cut_at: int | None = None
    _saved: float = field(default_factory=time.monotonic)

    def tick(self) -> None:
        if time.monotonic() - self._saved >= journal.CHECKPOINT_SECONDS:
            self.checkpoint()
            self._saved = time.monotonic()

    def wait_quiet(self, expected: Expected, day: date, meanwhile: Callable[[], None] | None = None) -> None:
        """Until everything dropped so far has arrived where it was sent; ``meanwhile`` is
        called after each look (the answers of what has arrived dropped as it arrives)."""
        last, moved = None, time.monotonic()
        wanted = (expected.deliveries, expected.receipts, expected.recalls)
        while True:
            self.progress.poll()
            if meanwhile is not None:
                meanwhile()
            now = (self.progress.delivered + self.progress.refused, self.progress.receipts, self.progress.recalls)
            if self.cut_at is not None and now[0] >= self.cut_at:
                self._cut()
            if all(got >= want for got, want in zip(now, wanted, strict=True)):
                return
            self.tick()
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.stall_seconds:
                raise TimeoutError(
                    f"{day}: nothing moved for {self.stall_seconds:.0f} s: delivered or refused {now[0]} of"
                    f" {expected.deliveries}, statuses back {now[1]} of {expected.receipts},"
                    f" recalls {now[2]} of {expected.recalls}"
                )
            time.sleep(0.1)

    def _cut(self) -> None:
        print(f"quarter: cutting the power at {self.progress.delivered} deliveries", file=sys.stderr, flush=True)
        for process in reversed(self.processes):  # the gateways first: none logs its axis gone
            process.popen.kill()
        os.kill(os.getpid(), signal.SIGKILL)


def latest_moment(logs: list[Path]) -> float:
    """The latest time (POSIX seconds, the province's clock) a line of these logs was written:
    where a resumed province's clock goes on from, whatever the journal missed."""
    latest = 0.0
    for log in logs:
        try:
            with log.open("rb") as source:
                start = max(0, source.seek(0, os.SEEK_END) - 16384)
                source.seek(start)
                tail = source.read().splitlines()[1 if start else 0 :]  # the first may be cut
        except OSError:
            continue
        for line in reversed(tail):
            try:
                stamp = json.loads(line)["timestamp"]
            except (ValueError, KeyError, TypeError):
                continue
            latest = max(latest, _posix(stamp))
            break
    return latest


def _posix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
