"""Text conventions shared by parse and build: NFC, trimmed, dates and timestamps."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone

# edXML times are Vietnam wall-clock time with no zone written; the axis's timestamps too.
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"

# What real files contain besides the edXML form (facts §1.2; BKAV writes dd/MM/yyyy).
_LENIENT_DATE_FORMATS = (DATE_FORMAT, "%d/%m/%Y", "%Y-%m-%d")
_LENIENT_TIMESTAMP_FORMATS = (TIMESTAMP_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S")


def clean(text: str) -> str:
    """Vietnamese arrives in NFC or NFD; compare and store NFC, without surrounding blanks."""
    return unicodedata.normalize("NFC", text).strip()


def now_vietnam() -> datetime:
    """Now, as edXML writes it: Vietnam wall-clock time to the second, without a zone."""
    return datetime.now(VIETNAM).replace(tzinfo=None, microsecond=0)


def vietnam_iso(epoch: float | None) -> str | None:
    """An instant as an admin reads it: Vietnam wall-clock time with its offset, to the second."""
    return None if epoch is None else datetime.fromtimestamp(epoch, VIETNAM).isoformat(timespec="seconds")


def format_date(value: date) -> str:
    return value.strftime(DATE_FORMAT)


def format_timestamp(value: datetime) -> str:
    return value.strftime(TIMESTAMP_FORMAT)


# The edXML forms, read without strptime (about 0.1 ms a call, two of them in each status
# message checked); whatever these do not take whole goes through strptime as before.
_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})", re.ASCII)
_TIMESTAMP = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})", re.ASCII)


def parse_date(text: str) -> date:
    if not text.isascii():  # strptime would take other scripts' digits
        raise ValueError(f"{text!r} is not a date (yyyy/MM/dd)")
    match = _DATE.fullmatch(text)
    if match is not None:
        try:
            return date(*map(int, match.groups()))
        except ValueError:
            pass  # strptime says what is wrong, or takes it another way
    for fmt in _LENIENT_DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (yyyy/MM/dd)")


def parse_timestamp(text: str) -> datetime:
    if not text.isascii():
        raise ValueError(f"{text!r} is not a timestamp (yyyy/MM/dd HH:mm:ss)")
    match = _TIMESTAMP.fullmatch(text)
    if match is not None:
        try:
            return datetime(*map(int, match.groups()))
        except ValueError:
            pass
    for fmt in _LENIENT_TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a timestamp (yyyy/MM/dd HH:mm:ss)")
