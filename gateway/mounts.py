"""Which file system holds a folder, and whether it is a disk of this machine.

An inbox on a local disk is written on the event loop, as the database is: its fsyncs take
what the database's COMMIT takes, and a hand-off to a worker thread costs more than the
writes of a small document (docs/performance.md). An inbox the document system shares over
the network (NFS, SMB) may answer an fsync in seconds, so anything not known to be local is
written in a worker thread, and its file system is first asked about there too (resolving a
path on a hung share blocks).
"""

from __future__ import annotations

import os
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
    device: str = ""  # "major:minor", as os.stat's st_dev of what is on it

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
        mounts.append(Mount(Path(point), after[0], before[2]))
    return mounts


def mount_of(path: Path, mounts: list[Mount], device: str | None = None) -> Mount | None:
    """The mount holding ``path`` (absolute, resolved): of the mounts on the path's device
    (``device``, "major:minor" of its st_dev, when known), the deepest mount point above it.

    The device decides first because the deepest point alone can be wrong: a share mounted
    later on /srv hides a disk mounted before on /srv/dms, and /srv/dms/inbox is then on the
    share. Where no mount names the device (a btrfs subvolume's own st_dev), the path decides.
    """
    on_device = [mount for mount in mounts if device is not None and mount.device == device]
    candidates = on_device or mounts
    holding = [mount for mount in candidates if path == mount.point or mount.point in path.parents]
    # the deepest point; of mounts on one point, the last (it hides the ones before it)
    return max(reversed(holding), key=lambda mount: len(mount.point.parts), default=None)


def file_system_of(folder: Path, mountinfo: Path = MOUNTINFO) -> Mount | None:
    """The mount holding ``folder`` on this machine, or None where the kernel does not say
    (no /proc: not Linux)."""
    try:
        # names the kernel leaves unescaped are bytes: undecodable ones kept as os.fsdecode keeps them
        text = mountinfo.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    path = Path(folder).resolve()
    try:
        found = os.stat(path).st_dev
        device: str | None = f"{os.major(found)}:{os.minor(found)}"
    except OSError:  # not there yet: the path alone
        device = None
    return mount_of(path, parse_mountinfo(text), device)


class LocalDisks:
    """Whether folders are on a disk of this machine, asked once per folder (at its first
    write, not at start: a share mounted late by the system is seen; one mounted after that
    first write is not, until the daemon starts again), and said in the log once per file
    system (an installation's inboxes are usually all on one)."""

    def __init__(self, mountinfo: Path = MOUNTINFO) -> None:
        self.mountinfo = mountinfo
        self._known: dict[Path, bool] = {}
        self._said: set[Path | None] = set()

    def known(self, folder: Path) -> bool | None:
        """What :meth:`holds` found for ``folder``, None before it was asked."""
        return self._known.get(folder)

    def holds(self, folder: Path, log: Any) -> bool:
        """Whether ``folder`` is on a local disk; the first time, it stats the path (in a worker
        thread when it may be a share)."""
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
