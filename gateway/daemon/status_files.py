"""Status files: a document system answers a received document through the drop folder.

``NAME.status.json`` in the drop folder of the agency that received the document, the same
way as a job folder (written under a dot-name, renamed when complete):

    {"answers": "<inbox folder, DocumentId or axis DocId>", "code": "03",
     "description": "...", "staff": "..."}

is the `respond` command without a shell: the status (02 with its reason, 03 đã tiếp nhận,
04 phân công, 05 đang xử lý, 06 hoàn thành, 15/16 on a recall or an update) is signed by that
agency and sent to the document's sender. A status the document's history does not allow (a
03 after its 06, a 02 without a reason) is refused into ``failed/`` with the reason, as a
job folder is. The file's name and content are its key: taken twice, it is sent once.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.daemon.jobs import regular_file_bytes
from gateway.daemon.outgoing import Agency, Local, Pending
from gateway.errors import IntakeError, UsageError
from gateway.vxp.protocol import parse_json

# How long a status file answering an inbox folder the record does not hold yet waits for it: the
# folder is written a moment before its commit (milliseconds; minutes under a stalled disk).
RECORD_BEHIND_SECONDS = 600.0

if TYPE_CHECKING:
    from gateway.daemon.commands import Answering

SUFFIX = ".status.json"
MAX_BYTES = 64 * 1024
KEYS = frozenset({"answers", "code", "description", "staff"})


def is_status_file(name: str) -> bool:
    return name.endswith(SUFFIX) and len(name) > len(SUFFIX)


def read(entry: Path) -> tuple[bytes, dict | IntakeError]:
    """The file's bytes and its request, or why it is refused (worker thread: intake keys the
    entry by the same bytes, so the file is read once). A regular file of one JSON object of
    known keys. An OSError while reading propagates: the disk, not the file; intake tries again."""
    if stat.S_ISDIR(entry.lstat().st_mode):
        return b"", IntakeError("a status file must be a regular file", where=entry.name)
    try:  # not through a link, never waiting on a pipe or a device
        raw = regular_file_bytes(entry, MAX_BYTES, entry.name)
    except IntakeError as refused:
        return b"", refused
    try:
        return raw, _request(raw, entry)
    except IntakeError as exc:
        return raw, exc


def _request(raw: bytes, entry: Path) -> dict:
    try:
        data = parse_json(raw.decode("utf-8"))  # JSON nested past the parser's depth: a ValueError too
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntakeError(f"not JSON in UTF-8: {exc}", where=entry.name) from None
    if not isinstance(data, dict):
        raise IntakeError("a status file is one JSON object", where=entry.name)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise IntakeError(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})", where=entry.name)
    return {
        "answers": _text(data, "answers", entry, required=True),
        "code": _text(data, "code", entry, required=True),
        "description": _text(data, "description", entry),
        "staff": _text(data, "staff", entry),
    }


def answering(local: Local, agency: Agency, request: dict) -> Answering:
    """What the record says of the answered document (the event loop's thread, which owns the
    connection). A document already in the inbox whose record is a moment behind (the folder
    is written before the commit) is left for intake's next run (an OSError postpones)."""
    from gateway.daemon import commands  # commands opens configurations; only the daemon's intake needs this

    try:
        return commands.answering(local, request["answers"], agency_code=agency.code, wait=False)
    except UsageError:
        written = commands.inbox_written_at(local, request["answers"], agency.code)
        # a moment, not for ever: a folder whose record is gone (restored from a backup, say)
        # is refused as a document the record does not hold
        if written is not None and time.time() - written < RECORD_BEHIND_SECONDS:
            raise BlockingIOError(f"{request['answers']} is in the inbox, its record a moment behind") from None
        raise


def signed(local: Local, answering: Answering, request: dict) -> Pending:
    """The signed status (on the event loop with a key in memory, else a worker thread)."""
    from gateway.daemon import commands

    pending, _ = commands.signed_answer(
        local, answering, code=request["code"], description=request["description"], staff=request["staff"]
    )
    return pending


def _text(data: dict, key: str, entry: Path, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        wanted = "a non-empty text" if required else "absent or a non-empty text"
        raise IntakeError(f"{key} must be {wanted}", where=f"{entry.name}: {key}")
    return value.strip()
