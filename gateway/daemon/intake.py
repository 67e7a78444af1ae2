"""Intake: the drop folder the document system writes into, taken in once each entry has settled.

An entry (a job folder with document.json and its files, or a ready .edxml file) leaves the
folder only after the database owns the signed message made from it; one that cannot be
sent goes to ``outbox/failed/`` with the reason beside it. docs/intake.md is the contract.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.daemon import commands, compose, jobs, status_files
from gateway.daemon import entries as entries_on_disk
from gateway.daemon.outgoing import Agency, Local, Pending
from gateway.errors import GatewayError, IntakeError, RecipientNotInDirectory, TokenUnavailable
from gateway.fsutil import take_group, write_atomic
from gateway.offload import SMALL_BYTES
from gateway.store import Outgoing

BATCH = 50
# A marker kept while an entry of this size or more is prepared: see Intake._count_preparation.
PREPARING = ".preparing-"
PREPARING_MARK_BYTES = 4 * 1024 * 1024
PREPARING_ATTEMPTS = 2
# An empty drop folder is listed again only when its mtime moves, and at least this often.
EMPTY_TRUSTED_AFTER = 3.0
FOLDER = ""  # the drop folder itself, among the entries whose mtimes intake watches (no entry is named "")
LOOK_ANYWAY_SECONDS = 30.0
TOKEN_RETRY_SECONDS = 5.0  # a signing token that failed is asked again after this
TIMER_SLACK_SECONDS = 0.005
# A status file's message signed is its request's text in an envelope with a signature: a few
# KB more than the file (3.2 KB for the replay's answers, from 200-byte files).
STATUS_SIGNED_OVERHEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class Looked:
    """What :meth:`Intake.look` read of a drop folder in its worker thread."""

    removed: int  # leftovers of a crash tidied away
    entries: list[Path]  # settled entries, BATCH at most
    settles_at: float | None  # when the first unsettled one will have settled
    looks: list[entries_on_disk.Look | OSError]  # each entry's key, size and status request


class Intake:
    """One hosted agency's drop folder: what is written there is sent as that agency."""

    def __init__(self, local: Local, agency: Agency) -> None:
        self.local = local
        self.agency = agency
        self.outbox = agency.outbox
        self.store = local.store
        self.outgoing = agency.outgoing
        self.limits = local.limits
        self.log = agency.log
        self._timer: asyncio.TimerHandle | None = None
        self._wake_at: float | None = None  # wall-clock time _timer is set for
        self._leftovers_said: set[str] = set()  # taken entries this account could not remove, said once
        self._empty_at: int | None = None  # the folder's mtime when a look found nothing in it
        self._looked_at = -LOOK_ANYWAY_SECONDS  # when the folder was last listed (monotonic)
        self._awaiting_directory: dict[str, float] = {}  # entry -> the directory's time it lacked a recipient in
        self._token_back_at = 0.0  # monotonic: before then the signing token is not asked again
        self._tidied_at: float | None = None  # monotonic: when tidy last ran (in this worker, never beside a take)
        self._unreadable: str | None = None  # why the folder could not be listed, once said
        self._refused = 0  # entries moved into failed/ (a run that moved some made progress)
        # entry (or FOLDER) -> (its mtime, our monotonic time when we first saw that mtime): what
        # is stamped ahead of our clock settles by being seen unchanged, see _unchanged_for
        self._seen: dict[str, tuple[float, float]] = {}

    def worth_a_look(self) -> bool:
        """Whether the drop folder may hold something new (worker thread): one stat instead of a
        listing while it stays as a look found it, empty. An installation hosting 300 agencies
        reads 300 folders five times a second."""
        if time.monotonic() - self._looked_at >= LOOK_ANYWAY_SECONDS:
            return True
        try:
            return os.stat(self.outbox).st_mtime_ns != self._empty_at
        except OSError:
            return True  # run() says what is wrong

    def look(self) -> Looked | OSError | None:
        """Worker thread: what a run reads of the drop folder, in one hand-off (and one for every
        hosted agency, see Gateway.intake): the tidying when it is due, the settled entries, and
        each one's key and status request; None when the folder need not be read (worth_a_look)
        or nothing can be signed meanwhile; the error when the folder cannot be read."""
        if time.monotonic() < self._token_back_at or not self.worth_a_look():
            return None  # a token that failed: the entries wait where they are
        try:
            removed = 0
            # what a crash or a refused removal left: at the first run, then every housekeeping interval
            if self._tidied_at is None or time.monotonic() - self._tidied_at >= self.local.config.workers.housekeeping:
                self._tidied_at = time.monotonic()
                removed = self.tidy()
            entries, settles_at = self._settled_entries()
        except OSError as exc:
            return exc
        return Looked(removed, entries, settles_at, entries_on_disk.look_at_each(entries))

    async def run(self, looked: Looked | OSError | None) -> None:
        """Take in what :meth:`look` found."""
        if looked is None:
            return
        if isinstance(looked, OSError):  # the folder itself (removed, not readable): the other agencies' go on
            self._say_unreadable(looked)
            return
        self._unreadable = None
        if looked.removed:
            self.log.info("intake_tidied", removed=looked.removed)
        if looked.settles_at is not None:
            self._wake_at_moment(looked.settles_at)
        # a run takes BATCH entries at most: after a full one that moved something out of the
        # folder, another run at once, not at the rescan (a backlog would drain BATCH a rescan).
        # Only what left the folder counts: entries that stay (a removal not allowed) must not
        # make intake go round and round.
        full, refused_before = len(looked.entries) >= BATCH, self._refused
        admissible = await self._admissible(list(zip(looked.entries, looked.looks, strict=True)))
        moved = await self._take_in_each(admissible) if admissible else 0
        if full and (moved or self._refused > refused_before):
            self.outgoing.wake("intake")

    async def _take_in_each(self, entries: list[tuple[Path, entries_on_disk.Look | OSError]]) -> int:
        """Each entry's message queued, then the entries taken away; how many left the folder.
        Their keys (and status files' requests) were read with the listing (:meth:`look`) and
        their removals are made in one hand-off: a round of answers dropped together costs two
        hand-offs, and one per document signed, not three per message."""
        taken: list[tuple[Path, Outgoing]] = []
        try:
            for entry, look in entries:
                go_on, item = await self._take_in(entry, look)
                if item is not None:
                    taken.append((entry, item))
                if not go_on:
                    break
        finally:
            # only now that the database owns their messages do the entries leave (a crash
            # before: the next run finds each one's message queued under its key)
            moved = await self._take_away(taken) if taken else 0
        return moved

    async def _admissible(
        self, entries: list[tuple[Path, entries_on_disk.Look | OSError]]
    ) -> list[tuple[Path, entries_on_disk.Look | OSError]]:
        """The entries (with their looks) to take in now: not those waiting for the directory to
        be read again, and not those whose names are too long (refused)."""
        admissible = []
        for entry, look in entries:
            if self._awaiting_directory.get(entry.name, -1.0) == self.local.names_at:
                continue  # held until the directory is read again
            self._awaiting_directory.pop(entry.name, None)
            length = len(os.fsencode(entry.name))
            most = entries_on_disk.MAX_ENTRY_NAME_BYTES
            if length > most:
                reason = f"the entry's name is {length} bytes long (UTF-8); intake takes names of at most {most} bytes"
                await asyncio.to_thread(self._refuse_entry, entry, reason)
                continue
            admissible.append((entry, look))
        return admissible

    async def _take_in(self, entry: Path, look: entries_on_disk.Look | OSError) -> tuple[bool, Outgoing | None]:
        """The entry's message queued (or found queued before): whether the run goes on, and the
        queued message, None when the entry was refused or is postponed."""
        marker = self.outbox / f"{PREPARING}{entry.name}"
        marked = False  # whether a marker may stand, to be removed whatever comes of the entry
        try:
            if isinstance(look, OSError):
                raise look
            content, size, request = look
            # a hosted agency's entries are keyed by its code too: two xã dropping the same
            # job folder are two documents (the installation's own keeps its key of old)
            owner = "" if self.agency.code == self.local.code else f"{self.agency.code}:"
            key = f"drop:{owner}{entry.name}:{content}"
            item = self.store.outgoing.by_source(key)
            if item is not None:
                return True, item
            if isinstance(request, IntakeError):
                raise request
            if request is not None:
                answering = status_files.answering(self.local, self.agency, request)  # the record: on the loop
                prepare = functools.partial(status_files.signed, self.local, answering, request)
                # a status is a few KB signed, kept in the database: signed on the loop when that
                # reads no file and the key is in memory (a long description, a 15 or 16 that
                # counts the inbox's recalls, an old record, or a token: in a thread)
                if (
                    size + STATUS_SIGNED_OVERHEAD_BYTES <= SMALL_BYTES
                    and self.agency.identity.in_memory
                    and commands.reads_no_files(answering, request["code"])
                ):
                    pending, written = self.outgoing.prepared(prepare)
                else:
                    pending, written = await asyncio.to_thread(self.outgoing.prepared, prepare)
            else:
                if size >= PREPARING_MARK_BYTES:
                    marked = True
                    await asyncio.to_thread(self._count_preparation, entry, size, marker)
                prepare = functools.partial(self._prepare_entry, entry, self.outgoing.next_number())
                pending, written = await asyncio.to_thread(self.outgoing.prepared, prepare)
            return True, self.outgoing.commit(written, pending, key)
        except OSError as exc:
            if entries_on_disk.the_entrys(entry, exc):  # the entry as written, which no retry reads better
                await asyncio.to_thread(self._refuse_entry, entry, f"{entry.name} cannot be read: {exc}")
            else:  # the disk, not the document: leave the entry for the next run
                self._postponed(entry, exc)
        except TokenUnavailable as exc:  # the token, not the document: signed when it is back
            self._token_back_at = time.monotonic() + TOKEN_RETRY_SECONDS
            self.log.warning("intake_postponed", entry=entry.name, reason=str(exc), retry_in=TOKEN_RETRY_SECONDS)
            self._wake_at_moment(time.time() + TOKEN_RETRY_SECONDS)
            return False, None
        except RecipientNotInDirectory as exc:
            if self.local.names_at > entries_on_disk.written_at(entry):
                await asyncio.to_thread(self._refuse_entry, entry, str(exc))
                return True, None
            # The directory is older than the entry: the recipient may have been registered at
            # the axis since (a hosted agency of another installation, minutes old). Read it
            # again before refusing.
            self._awaiting_directory[entry.name] = self.local.names_at
            self.outgoing.wake("directory")
            reason = f"{exc.message}; reading the axis directory again"
            self.log.info("intake_postponed", entry=entry.name, reason=reason)
        except (GatewayError, UnicodeDecodeError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self._refuse_entry, entry, reason)
        finally:
            if marked:  # prepared, refused or postponed: the process lived through it
                marker.unlink(missing_ok=True)
        return True, None

    async def _take_away(self, taken: list[tuple[Path, Outgoing]]) -> int:
        """Out of the drop folder, the entries whose messages the database owns, in one hand-off:
        each renamed to a dot-name first (ignored by intake), so a crash while deleting leaves no
        half entry; one that cannot be moved stays, and the next run finds its message queued."""
        outcomes = await asyncio.to_thread(lambda: [entries_on_disk.taken_away(entry) for entry, _ in taken])
        moved = 0
        for (entry, item), outcome in zip(taken, outcomes, strict=True):
            if isinstance(outcome, OSError):
                self._postponed(entry, outcome)
                continue
            moved += 1
            self.log.info("intake_taken", entry=compose.safe_job_name(entry.name), document_id=item.document_id)
            hidden, left = outcome
            if left is not None:
                self._say_leftover(hidden, left)
        return moved

    def _postponed(self, entry: Path, exc: OSError) -> None:
        self.log.warning("intake_postponed", entry=entry.name, reason=f"{type(exc).__name__}: {exc}")
        # soon, not at the rescan of a watched folder: nothing else wakes intake for it
        self._wake_at_moment(time.time() + self.local.config.workers.intake)

    def _count_preparation(self, entry: Path, size: int, marker: Path) -> None:
        """Refuse a large entry whose preparation the process has already died in twice.

        Signing costs several times a message's size in memory; under MemoryMax a scan that
        does not fit gets the service killed, systemd starts it again, and intake would take
        the same entry again, for ever. A marker counts the attempts that did not come back;
        an entry under PREPARING_MARK_BYTES is never the cause and gets no marker.
        """
        if size < PREPARING_MARK_BYTES:
            return
        try:
            attempts = int(marker.read_text(encoding="ascii") or 0)
        except (FileNotFoundError, ValueError):
            attempts = 0
        if attempts >= PREPARING_ATTEMPTS:
            raise IntakeError(
                f"the gateway stopped {attempts} times while preparing this entry ({size} bytes), most"
                " likely out of memory: send it smaller, or lower [limits] max_bytes so that such"
                " entries are refused at once, or give the service more memory",
                where=f"{entry.name}",
            )
        marker.write_text(str(attempts + 1), encoding="ascii")  # no fsync: a lost count only means one more try

    def _prepare_entry(self, entry: Path, sequence: int) -> Pending:
        if entry.is_dir():
            job, files = jobs.read_job(entry, self.limits)
            composed = compose.compose_document(
                job,
                files,
                sender=self.agency.me,
                names=self.local.names,
                sequence=sequence,
                where=f"{entry.name}/document.json",
            )
            return self.outgoing.sign_document(composed)
        return self.outgoing.sign_edxml(jobs.read_limited(entry, self.limits.max_bytes))

    def _wake_at_moment(self, moment: float) -> None:
        """Run intake again when the newest unsettled entry has settled, not at the next tick
        after that (up to one interval later)."""
        now = time.time()
        if self._wake_at is not None and now < self._wake_at <= moment:
            return  # a run that comes first is already set; it sets the next one
        if self._timer is not None:
            self._timer.cancel()
        self._wake_at = moment
        # a timer may fire a little early (the loop's clock is not the wall clock, and has its
        # grain): a run that finds the entry still unsettled would only set another
        self._timer = asyncio.get_running_loop().call_later(max(0.0, moment - now) + TIMER_SLACK_SECONDS, self._woken)

    def _woken(self) -> None:
        """The timer went off: none is set any more, whatever the run it starts finds."""
        self._wake_at = self._timer = None
        self.outgoing.wake("intake")

    def _say_unreadable(self, exc: OSError) -> None:
        """The drop folder cannot be listed: said once until it can (intake tries at every run)."""
        reason = f"{type(exc).__name__}: {exc.strerror or exc}"
        if reason != self._unreadable:
            self._unreadable = reason
            self.log.error("drop_folder_unreadable", folder=str(self.outbox), reason=reason)

    def _settled_entries(self) -> tuple[list[Path], float | None]:
        """Entries unchanged for [intake] settle_seconds, and when the first of the others will be."""
        settle = self.local.config.intake.settle_seconds
        now = time.time()
        ready: list[tuple[float, Path]] = []
        settles_at: float | None = None
        before = os.stat(self.outbox).st_mtime_ns
        candidates = 0
        listed = {FOLDER}
        for entry in sorted(self.outbox.iterdir()):
            listed.add(entry.name)
            if entry.name.startswith(".") or entry.name == "failed":
                continue
            if not (entry.is_dir() or entry.name.endswith(".edxml") or status_files.is_status_file(entry.name)):
                continue
            candidates += 1
            try:
                paths = [entry, *entry.rglob("*")] if entry.is_dir() else [entry]
                newest = max(p.stat().st_mtime for p in paths)
            except FileNotFoundError:
                continue  # the writer is still moving it
            moment = now + self._unchanged_for(entry.name, newest, now, settle)
            if moment <= now:
                ready.append((newest, entry))
            else:
                settles_at = moment if settles_at is None else min(settles_at, moment)
            if len(ready) >= BATCH:
                break
        # Trusted as empty only when its last change is a few seconds old: a file system with
        # coarse timestamps (2 s on FAT, a file server's clock behind ours) could give an entry
        # written just after the look the same mtime. And never for long: see worth_a_look.
        trusted = candidates == 0 and self._unchanged_for(FOLDER, before / 1e9, now, EMPTY_TRUSTED_AFTER) <= 0
        self._empty_at = before if trusted else None
        self._looked_at = time.monotonic()
        if len(ready) < BATCH and len(self._seen) > len(listed):  # the whole listing: forget what is gone
            self._seen = {name: seen for name, seen in self._seen.items() if name in listed}
        # in the order they were written, not by name: a 03 and then a 06 about one document,
        # found together after a stop, go out as the clerk wrote them (a 03 after its 06 is refused)
        return [entry for _, entry in sorted(ready, key=lambda pair: (pair[0], pair[1].name))], settles_at

    def _unchanged_for(self, key: str, stamp: float, now: float, seconds: float) -> float:
        """Seconds until ``key`` (an entry, or FOLDER), last changed at ``stamp`` (its mtime), has
        been unchanged for ``seconds``: 0 or less once it has. Normally by its mtime against our
        wall clock; but a file server whose clock runs ahead of ours stamps in our future, and
        waiting for our clock to catch up would hold every document back by as much. So also by
        sight: once we have seen the same mtime for ``seconds`` of our own monotonic clock."""
        by_stamp = stamp + seconds - now
        if by_stamp <= 0:
            self._seen.pop(key, None)
            return by_stamp
        seen = self._seen.get(key)
        if seen is None or seen[0] != stamp:
            seen = (stamp, time.monotonic())
            self._seen[key] = seen
        return min(by_stamp, seen[1] + seconds - time.monotonic())

    def tidy(self) -> int:
        """What a crash left in the drop folder: half-removed entries, markers of entries gone."""
        removed = 0
        for path in self.outbox.glob(".taken-*"):  # an entry whose removal a crash interrupted
            try:
                entries_on_disk.remove(path)
            except OSError as exc:  # written by another account without group write: said once
                self._say_leftover(path.name, exc)
                continue
            removed += 1
        for marker in self.outbox.glob(f"{PREPARING}*"):  # its entry was taken away meanwhile
            if not (self.outbox / marker.name.removeprefix(PREPARING)).exists():
                marker.unlink(missing_ok=True)
                removed += 1
        return removed

    def _say_leftover(self, name: str, error: OSError) -> None:
        """A taken entry this account may not delete: sent all the same, its copy stays; said once."""
        if name in self._leftovers_said:
            return
        self._leftovers_said.add(name)
        self.log.warning(
            "intake_leftover",
            entry=compose.safe_job_name(name),
            reason=f"{type(error).__name__}: {error.strerror or error}",
            hint="the document was taken and queued; the document system must write entries group-writable"
            " (umask 0007) so that the gateway can remove them (docs/intake.md)",
        )

    def _refuse_entry(self, entry: Path, reason: str) -> None:
        failed = self.outbox / "failed"
        target = failed / entries_on_disk.fitting(entry.name)
        if target.exists():
            target = failed / f"{target.stem}.{int(time.time())}{target.suffix}"
        try:
            entry.rename(target)
            self._refused += 1  # out of the folder (its reason beside it, or said in the log)
            write_atomic(failed / f"{target.name}.error.txt", (reason + "\n").encode())
            take_group(failed / f"{target.name}.error.txt", failed)  # the document system reads why
        except OSError as exc:
            self.log.error("intake_refusal_not_recorded", entry=entry.name, error=str(exc))
        self.log.warning("intake_refused", entry=entry.name, reason=reason, moved_to=str(target))
