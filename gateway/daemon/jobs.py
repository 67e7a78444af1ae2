"""Reading a drop-folder entry within the limits: a job folder's document.json and its files,
or a ready .edxml file. Sizes are checked before anything is read (docs/intake.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.daemon import compose
from gateway.errors import IntakeError
from gateway.vxp.protocol import parse_json

# document.json says what the document is (subject, recipients, a summary): a few KB. The text of
# a document travels as its attachments, which [limits] bounds.
DOCUMENT_JSON_MAX_BYTES = 1024 * 1024


def read_limited(path: Path, limit: int) -> bytes:
    if path.stat().st_size > limit:
        raise IntakeError(
            f"{path.name} is larger than the message limit of {limit} bytes ([limits] max_bytes)", where=path.name
        )
    return path.read_bytes()


def read_job(folder: Path, limits: edxml.Limits) -> tuple[dict[str, Any], list[compose.FileInput]]:
    """document.json and the attachment files of a job folder (listed ones, or every other file).

    Sizes are checked against [limits] before anything is read: a file too large to send must
    be refused here, not read whole into a service running under a memory limit.
    """
    try:
        raw = regular_file_bytes(folder / "document.json", DOCUMENT_JSON_MAX_BYTES, f"{folder.name}/document.json")
    except FileNotFoundError:
        raise IntakeError("the job folder has no document.json", where=f"{folder.name}/") from None
    try:
        job = parse_json(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, and JSON nested past the parser's depth, too
        raise IntakeError(f"document.json is not JSON: {exc}", where=f"{folder.name}/document.json") from None
    if not isinstance(job, dict):
        raise IntakeError("document.json must hold a JSON object", where=f"{folder.name}/document.json")
    listed = job.get("attachments")
    files: list[compose.FileInput] = []
    if listed is None:
        paths = [p for p in sorted(folder.iterdir()) if p.name != "document.json" and not p.name.startswith(".")]
        paths = [p for p in paths if not stat.S_ISDIR(p.lstat().st_mode)]  # a folder in a job is no attachment
        for path in paths:
            own_file(folder, path, f"{folder.name}/{path.name}")
        check_sizes(folder, paths, limits)
        files.extend(compose.FileInput(path.name, path.read_bytes()) for path in paths)
        return job, files
    if not isinstance(listed, list):
        raise IntakeError("must be a list", where=f"{folder.name}/document.json: attachments")
    specs = []
    for index, item in enumerate(listed):
        spec = {"file": item} if isinstance(item, str) else item
        where = f"{folder.name}/document.json: attachments[{index}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise IntakeError("must name a file", where=where)
        path = folder / spec["file"]
        own_file(folder, path, where)
        specs.append((spec, path))
    check_sizes(folder, [path for _, path in specs], limits)
    for spec, path in specs:
        files.append(
            compose.FileInput(
                str(spec.get("name") or path.name),
                path.read_bytes(),
                spec.get("content_type"),
                spec.get("description"),
            )
        )
    return job, files


def own_file(folder: Path, path: Path, where: str) -> None:
    """An attachment is a regular file of the job folder itself: not a link (the gateway can
    read its own signing key, which the document system's account cannot: a link to it would
    send it away), not a pipe or a device (a read that blocks or never ends), not elsewhere."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = 0
    if path.parent.resolve() != folder.resolve() or not stat.S_ISREG(mode):
        raise IntakeError(f"{path.name!r} is not a regular file of the job folder (a link, a folder?)", where=where)


def regular_file_bytes(path: Path, limit: int, where: str) -> bytes:
    """A regular file's bytes, at most ``limit``: not through a link, never waiting on a pipe or
    reading a device for ever (what was swapped in after the check is judged too)."""
    if path.is_symlink() or (path.exists() and not stat.S_ISREG(path.lstat().st_mode)):
        raise IntakeError("must be a regular file (not a link, a pipe or a device)", where=where)
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise IntakeError("must be a regular file (not a link, a pipe or a device)", where=where)
        raw = source.read(limit + 1)
    if len(raw) > limit:
        raise IntakeError(f"{path.name} is larger than {limit} bytes", where=where)
    return raw


def check_sizes(folder: Path, paths: list[Path], limits: edxml.Limits) -> None:
    if len(paths) > limits.max_attachments:
        raise IntakeError(
            f"{len(paths)} attachments, above the limit of {limits.max_attachments} ([limits] max_attachments)",
            where=f"{folder.name}/",
        )
    total = 0
    for path in paths:
        size = path.stat().st_size
        if size > limits.max_attachment_bytes:
            raise IntakeError(
                f"{path.name} is {size} bytes, above the attachment limit of {limits.max_attachment_bytes}"
                " ([limits] max_attachment_bytes)",
                where=f"{folder.name}/{path.name}",
            )
        total += size
    encoded = 4 * -(-total // 3)  # base64 of every attachment, before the rest of the message
    if encoded > limits.max_bytes:
        raise IntakeError(
            f"the attachments come to {total} bytes, {encoded} in base64: above the message limit"
            f" of {limits.max_bytes} bytes ([limits] max_bytes)",
            where=f"{folder.name}/",
        )
