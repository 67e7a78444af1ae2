import pytest

from gateway.edxml import AgencyCode
from gateway.errors import AgencyCodeError


def test_strict_code_levels_and_parents_follow_the_hierarchy():
    commune_unit = AgencyCode.strict("001.01.11.H58")
    assert commune_unit.level == 4
    chain = [code.text for code in commune_unit.ancestors()]
    assert chain == ["000.01.11.H58", "000.00.11.H58", "000.00.00.H58"]
    assert [AgencyCode(c).level for c in chain] == [3, 2, 1]
    assert AgencyCode.strict("000.00.00.H58").parent is None
    assert AgencyCode.strict("000.00.00.G22").top == "G22"


def test_a_code_that_skips_a_segment_has_the_level_of_its_chain():
    district_unit = AgencyCode.strict("001.00.10.H47")  # UBND huyện Duy Xuyên, Quảng Nam
    assert district_unit.parent == AgencyCode("000.00.10.H47")
    assert district_unit.level == 3


@pytest.mark.parametrize(
    "text",
    [
        "000.00.00.H5\u0668",
        "\u0660\u0660\u0660.00.00.H58",
        "00.00.00.H58",
        "000.00.00.h58",
        "000.00.00.H5",
        "000.00.00.58H",
        "000.00.H58",
        " ",
        "000.00.00.H58.1",
    ],
)
def test_strict_form_refuses_anything_but_qd20(text):
    with pytest.raises(AgencyCodeError) as caught:
        AgencyCode.strict(text)
    assert caught.value.code == "EDX108"
    assert repr(text) in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "vxp.saas.03",
        "00.53.W00",
        "H37.DN.001",
        "01.02.G22",
        "001.00.20.TT2",
        "VN:GOV:000.00.00.G22:vpcpdvcprovider",
        "null",
    ],
)
def test_lenient_form_accepts_identifiers_seen_in_the_wild(text):
    code = AgencyCode.lenient(text)
    assert code.text == text
    assert not code.is_qd20
    with pytest.raises(AgencyCodeError):
        _ = code.level


@pytest.mark.parametrize("text", ["", "a b", "<x>", "../x", "x" * 65, "mã"])
def test_lenient_form_still_refuses_what_is_no_identifier(text):
    with pytest.raises(AgencyCodeError):
        AgencyCode.lenient(text)


def test_codes_are_trimmed_and_compare_by_text():
    assert AgencyCode.lenient(" 000.00.00.H58 ") == AgencyCode.strict("000.00.00.H58")
    assert str(AgencyCode("000.00.00.H58")) == "000.00.00.H58"
