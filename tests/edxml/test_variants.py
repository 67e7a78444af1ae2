"""Our own fixture corpus (tests/fixtures): each real-world variant of facts §1 is read."""

from datetime import date, datetime

import pytest

from gateway import edxml
from gateway.edxml import Priority, StatusCode, SteeringType
from gateway.edxml.signature import SignatureState
from tests.conftest import FIXTURES


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_dotnet_layout_any_order_prefixed_attachments_and_bare_content_id():
    checked = edxml.validate(load("variant-dotnet.edxml"), trust=None, require_signature=False)
    doc = checked.message
    assert isinstance(doc, edxml.Document)
    assert doc.sender.organ_id.text == "000.00.12.H58"
    assert [t.organ_id.text for t in doc.to] == ["000.00.31.H58", "000.00.32.H58"]
    assert doc.code == edxml.Code("345", "STC-QLNS")
    assert doc.document_id == "000.00.12.H58,2023/08/15,345/STC-QLNS"
    assert doc.other_info.priority is Priority.VERY_URGENT and doc.other_info.direction is True
    assert doc.steering_type is SteeringType.NOT_STEERING
    assert doc.paper is False
    (attachment,) = doc.attachments
    assert attachment.content_id == "quyet-toan-2022"
    assert attachment.data.startswith(b"%PDF-1.4")
    assert checked.signature.state is SignatureState.UNSIGNED
    assert "DigitalSignature" in checked.signature.detail


def test_template_with_xmldsig_placeholder_dd_mm_yyyy_and_empty_elements():
    checked = edxml.validate(load("variant-dsig-placeholder.edxml"), trust=None, require_signature=False)
    doc = checked.message
    assert doc.promulgation_info.promulgation_date == date(2023, 9, 30)
    assert doc.due_date is None
    assert doc.sender.organ_add == "" and doc.sender.telephone == ""
    assert doc.signer_info == edxml.SignerInfo("", "", "Trần Văn D")
    assert doc.response_for == (edxml.ResponseFor(),)
    assert doc.other_info.appendixes == ("",)
    assert doc.to_places == ("Các bộ",)
    (attachment,) = doc.attachments
    assert attachment.data == "Ghi chú của văn thư\n".encode()  # base64 broken over two lines
    assert doc.manifest[0].content_type == "text/plain" and attachment.content_type == "application/zip"
    # a placeholder is "unsigned", never "invalid", and is not even mistaken for SHA-1 use
    assert checked.signature.state is SignatureState.UNSIGNED
    assert "no readable certificate" in checked.signature.detail


def test_vnpt_layout_in_nfd_with_crlf_comments_and_relay_hop():
    checked = edxml.validate(load("variant-vnpt-nfd.edxml"), trust=None, require_signature=False)
    doc = checked.message
    assert doc.sender.organ_name == "UBND xã Hậu Thành"  # NFC, equal to what a person types
    assert doc.subject == "Báo cáo tình hình thực hiện nhiệm vụ tháng 8"
    assert doc.business.paper is True
    assert doc.trace_headers[0].timestamp == datetime(2023, 9, 1, 7, 0, 0)
    assert doc.trace_headers[1].organ_id is None
    assert doc.attachments == ()
    assert "edXML namespace" in checked.signature.detail


def test_status_with_children_in_any_order_and_padded_values():
    status = edxml.read(load("status-any-order.edxml"))
    assert isinstance(status, edxml.StatusMessage)
    assert status.status_code is StatusCode.REFUSED
    assert status.sender.organ_id.text == "000.00.00.H58"
    assert status.response_for.organ_id.text == "000.00.00.G22"
    assert status.response_for.code == "7816/VPCP-TTĐT"
    assert status.description == "Từ chối: văn bản gửi nhầm đơn vị"
    assert status.staff_info.staff == "Phạm Thị E"


@pytest.mark.parametrize(
    "name",
    ["variant-dotnet.edxml", "variant-dsig-placeholder.edxml", "variant-vnpt-nfd.edxml", "status-any-order.edxml"],
)
def test_every_variant_rebuilds_to_the_same_values(name):
    message = edxml.read(load(name))
    assert edxml.read(edxml.build(message)) == message


def test_the_shipped_example_is_strictly_valid():
    from tests.conftest import REPO

    document = edxml.read((REPO / "examples" / "document.edxml").read_bytes(), mode=edxml.SchemaMode.STRICT)
    assert document.sender.organ_id.text == "000.00.00.H58"
