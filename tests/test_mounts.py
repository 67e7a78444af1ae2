"""Which file system holds a folder: the inbox is written on the event loop only on a disk of
this machine, in a worker thread on anything that may be a share (gateway/mounts.py)."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.mounts import LocalDisks, Mount, file_system_of, mount_of, parse_mountinfo

# The shape of /proc/self/mountinfo: a root on ext4, /srv on xfs, an NFS share of the document
# system mounted below it, a later mount hiding an earlier one on the same point, a point with
# a space (escaped \040), and a line not in the shape.
MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 254:1 / /srv rw,relatime shared:2 - xfs /dev/vdb rw
41 30 0:50 / /srv/dms rw,relatime shared:9 - nfs4 files.tinh.gov.vn:/dms rw,vers=4.2
42 30 0:51 / /srv/scratch rw - tmpfs tmpfs rw
43 42 0:52 / /srv/scratch rw - cifs //nas/scratch rw
44 27 0:53 / /mnt/v\\040b\\134n rw - ext4 /dev/vdc rw
garbage without the separator
"""


def test_the_mounts_are_read_in_the_kernels_order_with_escapes_undone():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [(str(m.point), m.fstype, m.device) for m in mounts] == [
        ("/", "ext4", "254:0"),
        ("/srv", "xfs", "254:1"),
        ("/srv/dms", "nfs4", "0:50"),
        ("/srv/scratch", "tmpfs", "0:51"),
        ("/srv/scratch", "cifs", "0:52"),
        ("/mnt/v b\\n", "ext4", "0:53"),
    ]


def test_a_folder_is_on_the_deepest_mount_above_it_and_the_latest_on_one_point():
    mounts = parse_mountinfo(MOUNTINFO)

    def held(path: str) -> Mount | None:
        return mount_of(Path(path), mounts)

    assert held("/srv/dms/inbox/UBND") == Mount(Path("/srv/dms"), "nfs4", "0:50")
    assert held("/srv/dms") == Mount(Path("/srv/dms"), "nfs4", "0:50")
    assert held("/srv/dmsx/inbox") == Mount(Path("/srv"), "xfs", "254:1")  # a sibling, not below the share
    assert held("/srv/scratch/inbox") == Mount(Path("/srv/scratch"), "cifs", "0:52")  # the later one hides tmpfs
    assert held("/var/lib/edxml-gateway/inbox") == Mount(Path("/"), "ext4", "254:0")
    assert held("/mnt/v b\\n/inbox") == Mount(Path("/mnt/v b\\n"), "ext4", "0:53")
    assert mount_of(Path("/srv"), []) is None
    assert [held(p).local for p in ("/srv/dms/a", "/srv/scratch/a", "/srv/a", "/a")] == [False, False, True, True]


def test_the_device_of_the_folder_decides_before_the_deepest_mount_point():
    """A share mounted on /srv after a disk was mounted on /srv/dms hides that disk: what is
    at /srv/dms/inbox now is on the share, whose device the folder's st_dev names."""
    hidden = parse_mountinfo(
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        "30 27 254:1 / /srv/dms rw - ext4 /dev/vdb rw\n"
        "41 27 0:50 / /srv rw - nfs4 nas:/srv rw\n"
    )
    inbox = Path("/srv/dms/inbox")
    assert mount_of(inbox, hidden, "0:50") == Mount(Path("/srv"), "nfs4", "0:50")
    assert mount_of(inbox, hidden, "254:1") == Mount(Path("/srv/dms"), "ext4", "254:1")
    # a device no mount names (a btrfs subvolume's own st_dev), or none known: the path decides
    assert mount_of(inbox, hidden, "0:99") == Mount(Path("/srv/dms"), "ext4", "254:1")
    assert mount_of(inbox, hidden) == Mount(Path("/srv/dms"), "ext4", "254:1")


class Lines:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def info(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))


def test_local_disks_asks_the_kernel_once_per_folder_and_says_what_it_found_once_per_mount(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    share = tmp_path.resolve() / "share"  # as file_system_of resolves the folder
    mountinfo.write_text(f"27 1 254:0 / / rw - ext4 /dev/vda rw\n41 27 0:50 / {share} rw - nfs4 nas:/dms rw\n")
    log = Lines()
    disks = LocalDisks(mountinfo)
    assert disks.known(tmp_path / "inbox") is None
    assert disks.holds(tmp_path / "inbox", log) is True
    assert disks.known(tmp_path / "inbox") is True
    assert disks.holds(tmp_path / "inbox-2", log) is True  # the same file system: not said again
    assert disks.holds(share / "inbox", log) is False
    mountinfo.write_text("")  # asked once: a folder's answer is kept
    assert disks.holds(share / "inbox", log) is False
    assert log.events == [
        (
            "folder_file_system",
            {
                "folder": str(tmp_path / "inbox"),
                "mount_point": "/",
                "file_system": "ext4",
                "small_messages_written": "on the event loop",
            },
        ),
        (
            "folder_file_system",
            {
                "folder": str(share / "inbox"),
                "mount_point": str(share),
                "file_system": "nfs4",
                "small_messages_written": "in a worker thread",
            },
        ),
    ]
    # where the kernel does not say (no /proc), nothing is taken for local
    assert LocalDisks(tmp_path / "absent").holds(tmp_path, log) is False
    assert log.events[-1][1]["file_system"] is None


def test_this_machines_own_mount_table_names_the_device_a_test_folder_is_on(tmp_path):
    mount = file_system_of(tmp_path)
    if not Path("/proc/self/mountinfo").is_file():
        assert mount is None
        return
    found = os.stat(tmp_path).st_dev
    assert mount is not None and mount.device == f"{os.major(found)}:{os.minor(found)}"
    resolved = tmp_path.resolve()
    assert mount.point == resolved or mount.point in resolved.parents
