"""Dates and timestamps: the fast reading of the edXML forms means what strptime meant."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.edxml.text import DATE_FORMAT, TIMESTAMP_FORMAT, parse_date, parse_timestamp

DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5)
DATE_FORMS = (DATE_FORMAT, "%d/%m/%Y", "%Y-%m-%d")
TIMESTAMP_FORMS = (TIMESTAMP_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S")


def by_strptime(text: str, forms: tuple[str, ...]) -> datetime | str:
    """How the readers read before they had a fast path: each form through strptime."""
    if not text.isascii():
        return "refused"
    for fmt in forms:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return "refused"


def outcome(parse, text: str) -> object:
    try:
        return parse(text)
    except ValueError:
        return "refused"


@given(st.tuples(DIGITS, DIGITS, DIGITS, st.sampled_from("/-")))
def test_a_date_reads_as_strptime_read_it(parts):
    text = parts[3].join(parts[:3])
    expected = by_strptime(text, DATE_FORMS)
    assert outcome(parse_date, text) == (expected if expected == "refused" else expected.date())


@given(st.tuples(DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, st.sampled_from([" ", "  ", "T"])))
def test_a_timestamp_reads_as_strptime_read_it(parts):
    text = f"{parts[0]}/{parts[1]}/{parts[2]}{parts[6]}{parts[3]}:{parts[4]}:{parts[5]}"
    assert outcome(parse_timestamp, text) == by_strptime(text, TIMESTAMP_FORMS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023/07/03", datetime(2023, 7, 3)),
        ("2023/7/3", datetime(2023, 7, 3)),
        ("03/07/2023", datetime(2023, 7, 3)),  # BKAV's dd/MM/yyyy
        ("2023-07-03", datetime(2023, 7, 3)),
        ("2023/02/29", "refused"),
        ("2023/13/01", "refused"),
        ("２０２３/07/03", "refused"),  # other scripts' digits
    ],
)
def test_dates(text, expected):
    got = outcome(parse_date, text)
    assert got == (expected if expected == "refused" else expected.date())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023/07/03 08:05:09", datetime(2023, 7, 3, 8, 5, 9)),
        ("2023/7/3 8:5:9", datetime(2023, 7, 3, 8, 5, 9)),
        ("2023-07-03T08:05:09", datetime(2023, 7, 3, 8, 5, 9)),
        ("03/07/2023 08:05:09", datetime(2023, 7, 3, 8, 5, 9)),
        ("2023/07/03  08:05:09", datetime(2023, 7, 3, 8, 5, 9)),  # strptime takes any run of blanks
        ("2023/07/03 24:00:00", "refused"),
        ("2023/07/03 08:60:00", "refused"),
        ("2023/07/03 08:05", "refused"),
    ],
)
def test_timestamps(text, expected):
    assert outcome(parse_timestamp, text) == expected


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_what_the_gateway_writes_it_reads_back(moment):
    assert parse_timestamp(moment.strftime(TIMESTAMP_FORMAT)) == moment
    assert parse_date(moment.strftime(DATE_FORMAT)) == moment.date()
    unpadded = f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute}:{moment.second}"
    assert parse_timestamp(unpadded) == moment == by_strptime(unpadded, TIMESTAMP_FORMS)
