"""The replay's calendar: the province's processes see a wall clock set to a day of 2023.

Every process of the province (axes, gateways) runs with ``shifted_clock.so`` preloaded; it
adds one offset, read from a shared mapped file, to CLOCK_REALTIME. The load generator steps
the calendar by writing a new offset there: every process sees the step at the same instant.
Only the wall clock moves: monotonic clocks, sleeps and timeouts are the machine's, so the
gateways' timers, retries and long-polls behave as on any day.

Why not libfaketime (Debian's 0.9.10): with the monotonic clock left alone
(FAKETIME_DONT_FAKE_MONOTONIC=1) Python's ``time.sleep`` fails with EINVAL; with it faked,
each step of the calendar also jumps every process's monotonic clock, and every timeout in
flight (a long-poll's, an HTTP call's) fires at once; and each process re-reads a changed
offset on its own schedule (FAKETIME_CACHE_DURATION), so during a step processes disagree by
a day and the axis refuses their calls as outside its timestamp window.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import subprocess
import time
from datetime import datetime
from pathlib import Path

SOURCE = Path(__file__).with_name("shifted_clock.c")


class ShiftedClock:
    """The offset file and the library that reads it, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.library = folder / "shifted_clock.so"
        self.offset_file = folder / "clock-offset"
        self._fd = os.open(self.offset_file, os.O_RDWR)
        self._shared = mmap.mmap(self._fd, 16)  # [sequence, offset], as the library reads them
        # whether this very process reads the shifted clock (then the real time is its time
        # less the offset): the library is mapped in it
        self._shifted = str(self.library) in Path("/proc/self/maps").read_text()

    @classmethod
    def build(cls, folder: Path) -> ShiftedClock:
        """Compile the library and start the offset at 0."""
        folder.mkdir(parents=True, exist_ok=True)
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("the replay needs a C compiler (cc or gcc) to build its shifted clock")
        subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-o", str(folder / "shifted_clock.so"), str(SOURCE), "-ldl"],
            check=True,
            capture_output=True,
        )
        (folder / "clock-offset").write_bytes(struct.pack("<qq", 0, 0))
        return cls(folder)

    @property
    def env(self) -> dict[str, str]:
        """What a process of the province is started with."""
        return {"LD_PRELOAD": str(self.library), "SHIFTED_CLOCK_FILE": str(self.offset_file)}

    def _offset(self) -> int:
        return struct.unpack_from("<q", self._shared, 8)[0]

    def now(self) -> float:
        """The province's clock now, in POSIX seconds."""
        return time.time() + (0.0 if self._shifted else self._offset() / 1e9)

    def set(self, moment: datetime) -> None:
        """From now on the province's clocks read ``moment`` (aware), running on from there."""
        real_ns = time.time_ns() - (self._offset() if self._shifted else 0)
        sequence = struct.unpack_from("<q", self._shared, 0)[0]
        # a seqlock: odd while writing, so that a reader never uses an offset half written
        struct.pack_into("<q", self._shared, 0, sequence + 1)
        struct.pack_into("<q", self._shared, 8, round(moment.timestamp() * 1e9) - real_ns)
        struct.pack_into("<q", self._shared, 0, sequence + 2)

    def close(self) -> None:
        self._shared.close()
        os.close(self._fd)
