"""Which file system holds a folder, and whether it is a disk of this machine.

An inbox on a local disk is written on the event loop, as the database is: its fsyncs take
what the database's COMMIT takes, and a hand-off to a worker thread costs more than the
writes of a small document (docs/performance.md). An inbox the document system shares over
the network (NFS, SMB) may answer an fsync in seconds, so anything not known to be local is
written in a worker thread, where a slow share holds no other work of the gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOUNTINFO = Path("/proc/self/mountinfo")

# Disk file systems of this machine (overlay: a container's root, whose layers are local).
# Everything else (nfs, nfs4, cifs, smb3, fuse.*, ceph, 9p, ...) counts as possibly remote.
LOCAL_DISK_TYPES = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs", "tmpfs", "ramfs", "overlay"}
)

_ESCAPED = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: Path
    fstype: str

    @property
    def local(self) -> bool:
        return self.fstype in LOCAL_DISK_TYPES


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a /proc/PID/mountinfo text, in its order (a later mount on the same point
    hides an earlier one). Lines not in its shape are skipped."""
    mounts = []
    for line in text.splitlines():
        fields, dash, rest = line.partition(" - ")
        before, after = fields.split(), rest.split()
        if not dash or len(before) < 5 or not after:
            continue
        point = _ESCAPED.sub(lambda match: chr(int(match.group(1), 8)), before[4])
        mounts.append(Mount(Path(point), after[0]))
    return mounts


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount holding ``path`` (absolute, resolved): the deepest mount point above it."""
    holding = [mount for mount in mounts if path == mount.point or mount.point in path.parents]
    # the deepest point; of mounts on one point, the last (it hides the ones before it)
    return max(reversed(holding), key=lambda mount: len(mount.point.parts), default=None)


def file_system_of(folder: Path, mountinfo: Path = MOUNTINFO) -> Mount | None:
    """The mount holding ``folder`` on this machine, or None where the kernel does not say
    (no /proc: not Linux)."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return mount_of(Path(folder).resolve(), parse_mountinfo(text))


class LocalDisks:
    """Whether folders are on a disk of this machine, asked once per folder (at its first
    write, not at start: a share mounted late by the system is seen), and said in the log
    once per file system (an installation's inboxes are usually all on one)."""

    def __init__(self, mountinfo: Path = MOUNTINFO) -> None:
        self.mountinfo = mountinfo
        self._known: dict[Path, bool] = {}
        self._said: set[Path | None] = set()

    def holds(self, folder: Path, log: Any) -> bool:
        local = self._known.get(folder)
        if local is None:
            mount = file_system_of(folder, self.mountinfo)
            local = self._known[folder] = mount is not None and mount.local
            point = mount.point if mount else None
            if point not in self._said:
                self._said.add(point)
                log.info(
                    "folder_file_system",
                    folder=str(folder),
                    mount_point=str(point) if point else None,
                    file_system=mount.fstype if mount else None,
                    small_messages_written="on the event loop" if local else "in a worker thread",
                )
        return local
