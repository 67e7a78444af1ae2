"""Reading a drop-folder entry within the limits: a job folder's document.json and its files,
or a ready .edxml file. Sizes are checked before anything is read (docs/intake.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway import edxml
from gateway.daemon import compose
from gateway.errors import IntakeError


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
        job = json.loads((folder / "document.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntakeError("the job folder has no document.json", where=f"{folder.name}/") from None
    except ValueError as exc:
        raise IntakeError(f"document.json is not JSON: {exc}", where=f"{folder.name}/document.json") from None
    if not isinstance(job, dict):
        raise IntakeError("document.json must hold a JSON object", where=f"{folder.name}/document.json")
    listed = job.get("attachments")
    files: list[compose.FileInput] = []
    if listed is None:
        paths = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "document.json"]
        paths = [p for p in paths if not p.name.startswith(".")]
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
        if path.resolve().parent != folder.resolve() or not path.is_file():
            raise IntakeError(f"{spec['file']!r} is not a file of the job folder", where=where)
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
