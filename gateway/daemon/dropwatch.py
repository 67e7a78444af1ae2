"""The drop folders watched through inotify: intake runs when an entry arrives.

Read every [workers] intake seconds, an installation hosting 30 agencies stats 30 folders five
times a second through the scheduler: most of what an idle gateway costs (about 0.5 % of a
core), fifty times over on a machine running a province. Watched, a folder is read when the
kernel says a name appeared in it (a job folder renamed in, a status file, a file written in
place), and also every [intake] rescan_seconds, for what the kernel does not see: a folder on a
network filesystem written from another machine.

Names starting with a dot are ignored, as intake ignores them: a writer's hidden folder, and
intake's own markers. Where inotify cannot be had (not Linux, the kernel's watch limit reached,
``[intake] watch = false``) or a watch is lost (the folder removed or moved), the folders are
read every [workers] intake seconds, as before; a warning says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import inotify_simple
from inotify_simple import flags

# a name that appears (created, renamed in, finished writing), and the folder itself going away
MASK = flags.CREATE | flags.MOVED_TO | flags.CLOSE_WRITE | flags.DELETE_SELF | flags.MOVE_SELF


class DropWatch:
    """One inotify descriptor for every drop folder of the installation, read on the event loop."""

    def __init__(
        self, notify: Any, folders: dict[int, Path], *, wake: Callable[[], None], on_lost: Callable[[str], None]
    ) -> None:
        self._notify = notify
        self._folders = folders  # watch descriptor -> folder
        self._wake = wake
        self._on_lost = on_lost
        self.watching = True
        asyncio.get_running_loop().add_reader(notify.fileno(), self._readable)

    @classmethod
    def start(
        cls, folders: Iterable[Path], *, wake: Callable[[], None], on_lost: Callable[[str], None]
    ) -> DropWatch | str:
        """Watching every folder, or why not (then nothing is watched)."""
        try:
            notify = inotify_simple.INotify(nonblocking=True)
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify (not Linux)
            return f"inotify cannot be started: {exc}"
        watched: dict[int, Path] = {}
        for folder in folders:
            try:
                watched[notify.add_watch(folder, MASK)] = folder
            except OSError as exc:  # ENOSPC: fs.inotify.max_user_watches reached; ENOENT, EACCES
                notify.close()
                return f"{folder} cannot be watched: {exc.strerror or exc}"
        return cls(notify, watched, wake=wake, on_lost=on_lost)

    def _readable(self) -> None:
        try:
            events = self._notify.read(timeout=0)
        except BlockingIOError:
            return
        except OSError as exc:
            self._stop(f"the inotify descriptor cannot be read: {exc.strerror or exc}")
            return
        wake = False
        for event in events:
            if event.mask & flags.Q_OVERFLOW:  # events were dropped: every folder is read anyway
                wake = True
            elif event.mask & (flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF):
                folder = self._folders.get(event.wd, "a drop folder")
                self._stop(f"{folder} was removed or moved; its watch is gone")
                return
            elif event.name and not event.name.startswith("."):
                wake = True
        if wake:
            self._wake()

    def _stop(self, reason: str) -> None:
        """Polling from now on: said once, through ``on_lost``."""
        if not self.watching:
            return
        self.close()
        self._on_lost(reason)

    def close(self) -> None:
        if not self.watching:
            return
        self.watching = False
        asyncio.get_running_loop().remove_reader(self._notify.fileno())
        self._notify.close()
