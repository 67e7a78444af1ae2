"""The wire's words, as both the axis and the client read and write them."""

from __future__ import annotations

import json

import pytest

from gateway.vxp.answers import AxisCode
from gateway.vxp.vocabulary import DeliveryState, MessageType


@pytest.mark.parametrize(
    ("text", "expected"),
    [("edoc", MessageType.EDOC), (" EDoc ", MessageType.EDOC), ("status", MessageType.STATUS), ("", None), ("x", None)],
)
def test_a_message_type_is_read_whatever_its_case_and_blanks(text, expected):
    assert MessageType.from_wire(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("done", DeliveryState.DONE),
        (" Fail", DeliveryState.FAIL),
        ("PROCESSING", DeliveryState.PROCESSING),
        ("pending", None),  # where a delivery starts, never something a recipient reports
        ("ok", None),
    ],
)
def test_a_recipient_reports_processing_done_or_fail_only(text, expected):
    assert DeliveryState.reported(text) is expected


def test_the_words_go_into_json_and_sql_as_their_wire_text():
    assert json.dumps({"status": DeliveryState.DONE, "messagetype": MessageType.STATUS}) == (
        '{"status": "done", "messagetype": "status"}'
    )
    assert f"{MessageType.EDOC}" == "edoc" and DeliveryState("fail").meaning.startswith("the recipient failed")


def test_every_error_code_is_known_by_its_wire_text_and_only_refusals_of_the_file_are_permanent():
    for code in AxisCode:
        assert AxisCode.from_wire(f" {code.wire} ") is code
    assert AxisCode.from_wire("99") is None
    assert {c for c in AxisCode if c.refuses_caller} == {AxisCode.BAD_CREDENTIALS, AxisCode.STALE_TIMESTAMP}
    transient = {AxisCode.OK, AxisCode.INTERNAL, AxisCode.NOT_FOUND, AxisCode.REPLAYED}
    assert {c for c in AxisCode if not c.permanent} == transient | {c for c in AxisCode if c.refuses_caller}
