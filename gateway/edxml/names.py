"""Attachment names from the wire, made safe to use as file names.

A sender controls AttachmentName; a receiver writes files named after it. So before any
name reaches a file system it loses directory parts, control and reserved characters,
Windows device names and excess length, and never comes out empty, "." or "..".
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 200  # below every common file system's 255-byte limit, leaving room for suffixes
FALLBACK = "attachment"

_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f-\x9f]')
# Windows also treats COM¹-³ and LPT¹-³ (superscript digits) as devices.
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789¹²³"}
)


def safe_file_name(name: str, *, fallback: str = FALLBACK) -> str:
    """A file name that stays inside the folder it is written to, keeping what it can of ``name``."""
    text = unicodedata.normalize("NFC", name)
    # Only the last path component counts, whichever separator the sender's system used.
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    text = _RESERVED_CHARS.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        return fallback
    stem, dot, extension = text.rpartition(".")
    if not dot:
        stem, extension = text, ""
    # "con .pdf" and "con.tar.gz" name the device too: compare the part before the first dot, blanks trimmed
    if stem.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    return _fit(stem, f".{extension}" if dot else "") or fallback


def _fit(stem: str, extension: str) -> str:
    """Cut to MAX_NAME_BYTES of UTF-8 without splitting a character, keeping a short extension."""
    if len(extension.encode()) > 16:  # not really an extension: part of the name
        stem, extension = stem + extension, ""
    budget = MAX_NAME_BYTES - len(extension.encode())
    encoded = stem.encode()
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return f"{stem}{extension}" if stem else ""
