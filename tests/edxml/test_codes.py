import pytest

from gateway.edxml import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType


def test_status_codes_are_exactly_the_known_list_with_meanings():
    assert [c.wire for c in StatusCode] == ["01", "02", "03", "04", "05", "06", "13", "15", "16"]
    assert all(c.meaning for c in StatusCode)
    assert StatusCode.from_wire(" 03 ") is StatusCode.ACCEPTED


@pytest.mark.parametrize(
    ("enum", "values"),
    [(Priority, [0, 1, 2, 3, 4]), (BusinessDocType, [0, 1, 2, 3]), (SteeringType, [0, 1, 2]), (ReceiverType, [0, 1])],
)
def test_numeric_code_lists(enum, values):
    assert [m.value for m in enum] == values
    for value in values:
        assert enum.from_wire(str(value)).value == value


@pytest.mark.parametrize(("enum", "bad"), [(StatusCode, "07"), (StatusCode, "1"), (Priority, "5"), (SteeringType, "x")])
def test_values_outside_a_list_are_refused_naming_the_allowed_ones(enum, bad):
    with pytest.raises(ValueError, match="is not one of"):
        enum.from_wire(bad)
