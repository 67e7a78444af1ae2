"""What is not edXML is refused with an error naming the element and its line."""

import pytest

from gateway import edxml
from gateway.errors import (
    AttachmentError,
    FormatError,
    InvalidValue,
    MalformedXML,
    SchemaViolation,
    StructureError,
)
from tests.messages import full_document, full_status


@pytest.fixture(scope="module")
def doc_text() -> str:
    return edxml.build(full_document()).decode()


@pytest.fixture(scope="module")
def status_text() -> str:
    return edxml.build(full_status()).decode()


def refuse(text: str, error: type[FormatError]) -> FormatError:
    """`read` (schema, then reader) refuses the message with this error."""
    with pytest.raises(error) as caught:
        edxml.read(text.encode())
    return caught.value


def test_wrong_root(doc_text):
    error = refuse(
        doc_text.replace("<edXML xmlns", "<Document xmlns").replace("</edXML>", "</Document>"), SchemaViolation
    )
    assert "line 2" in error.where


def test_wrong_namespace():
    text = '<?xml version="1.0"?><edXML xmlns="urn:other"><x/></edXML>'
    with pytest.raises(FormatError) as caught:
        edxml.read(text.encode())
    assert caught.value.where == "line 1"


def test_not_xml_at_all():
    with pytest.raises(MalformedXML) as caught:
        edxml.read(b"1212<?xml version='1.0'?><edXML/>")
    assert caught.value.where.startswith("line 1")


def test_unknown_element_is_named_with_its_line(doc_text):
    text = doc_text.replace("<edXML:Subject>", "<edXML:Sneaky>x</edXML:Sneaky><edXML:Subject>", 1)
    error = refuse(text, SchemaViolation)
    assert "Sneaky" in error.message and error.where.startswith("line ")


def test_reader_alone_names_the_unknown_element(doc_text):
    from gateway.edxml.parse import message_from_tree
    from gateway.edxml.xmlsafe import parse_xml

    text = doc_text.replace("<edXML:Subject>", "<edXML:Sneaky>x</edXML:Sneaky><edXML:Subject>", 1)
    with pytest.raises(StructureError) as caught:
        message_from_tree(parse_xml(text.encode()))
    assert "edXML:Sneaky is not allowed in edXML:MessageHeader" in caught.value.message
    assert caught.value.where.startswith("line ") and "edXML:Sneaky" in caught.value.where


def test_two_from_elements(doc_text):
    start = doc_text.index("<edXML:From>")
    end = doc_text.index("</edXML:From>") + len("</edXML:From>")
    error = refuse(doc_text[:end] + doc_text[start:end] + doc_text[end:], StructureError)
    assert "2 edXML:From" in error.message


def test_missing_from(doc_text):
    start = doc_text.index("<edXML:From>")
    end = doc_text.index("</edXML:From>") + len("</edXML:From>")
    error = refuse(doc_text[:start] + doc_text[end:], StructureError)
    assert "lacks edXML:From" in error.message


def test_no_recipient(doc_text):
    import re

    text = re.sub(r"<edXML:To>.*?</edXML:To>", "", doc_text, flags=re.S)
    assert "recipient" in refuse(text, StructureError).message


def test_duplicate_recipient(doc_text):
    start = doc_text.index("<edXML:To>")
    end = doc_text.index("</edXML:To>") + len("</edXML:To>")
    error = refuse(doc_text[:end] + doc_text[start:end] + doc_text[end:], StructureError)
    assert "named twice" in error.message


def test_empty_subject(doc_text):
    import re

    text = re.sub(r"<edXML:Subject>.*?</edXML:Subject>", "<edXML:Subject> </edXML:Subject>", doc_text)
    assert "Subject is empty" in refuse(text, StructureError).message


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("<edXML:Priority>1<", "<edXML:Priority>9<", InvalidValue),
        ("<edXML:SteeringType>1<", "<edXML:SteeringType>7<", InvalidValue),
        ("<edXML:BussinessDocType>2<", "<edXML:BussinessDocType>5<", InvalidValue),
        ("<edXML:DueDate>2023/07/31<", "<edXML:DueDate>2023/02/30<", InvalidValue),
        ("<edXML:DueDate>2023/07/31<", "<edXML:DueDate>mai<", SchemaViolation),
        ("<edXML:PageAmount>2<", "<edXML:PageAmount>-2<", InvalidValue),
        ("<edXML:Paper>1<", "<edXML:Paper>yes<", SchemaViolation),
    ],
)
def test_values_outside_their_lists_or_formats(doc_text, old, new, error):
    assert old in doc_text
    refused = refuse(doc_text.replace(old, new, 1), error)
    assert refused.where.startswith("line ")


def test_status_code_outside_the_list(status_text):
    refused = refuse(status_text.replace("<edXML:StatusCode>03<", "<edXML:StatusCode>07<"), SchemaViolation)
    assert "StatusCode" in refused.message


def test_status_with_attachments_is_refused(status_text, doc_text):
    body_start = doc_text.index("<AttachmentEncoded>")
    body_end = doc_text.index("</AttachmentEncoded>") + len("</AttachmentEncoded>")
    text = status_text.replace("</edXML>", doc_text[body_start:body_end] + "</edXML>")
    with pytest.raises(FormatError):
        edxml.read(text.encode())


def test_text_where_elements_belong_and_elements_where_text_belongs(doc_text):
    text = doc_text.replace(
        "<edXML:CodeNumber>1234</edXML:CodeNumber>", "<edXML:CodeNumber><b>1</b></edXML:CodeNumber>"
    )
    with pytest.raises(FormatError):
        edxml.read(text.encode())


class TestAttachments:
    def test_duplicate_content_ids(self, doc_text):
        text = doc_text.replace("cid:att-1", "cid:att-0")
        error = refuse(text, AttachmentError)
        assert "share ContentId 'att-0'" in error.message

    def test_manifest_announces_a_missing_attachment(self, doc_text):
        text = doc_text.replace("<ContentId>cid:att-1</ContentId>", "<ContentId>cid:att-9</ContentId>")
        error = refuse(text, AttachmentError)
        assert "'att-1'" in error.message and "no attachment carries it" in error.message

    def test_cid_prefix_on_either_side_matches(self, doc_text):
        text = doc_text.replace("<ContentId>cid:att-1</ContentId>", "<ContentId>att-1</ContentId>")
        assert edxml.read(text.encode()).attachments[1].content_id == "att-1"

    @pytest.mark.parametrize("payload", ["not base64!", "AAA", "AAAA=AAA", "QUJD\u00e9", "QUJD=", "Q===", "QU-_"])
    def test_invalid_base64(self, doc_text, payload):
        import re

        text = re.sub(r"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", lambda m: m.group(1) + payload, doc_text, count=1)
        error = refuse(text, AttachmentError)
        assert "base64" in error.message and "ContentTransferEncoded" in error.where

    def test_missing_name(self, doc_text):
        text = doc_text.replace("<AttachmentName>Quyết định 0.pdf</AttachmentName>", "")
        assert "AttachmentName" in refuse(text, AttachmentError).message

    def test_too_many_attachments(self):
        data = edxml.build(full_document(attachments=4))
        with pytest.raises(AttachmentError, match="4 attachments, the limit is 3"):
            edxml.read(data, limits=edxml.Limits(max_attachments=3))

    def test_attachment_over_the_size_limit(self):
        data = edxml.build(full_document(attachments=2))  # the second carries 512 bytes
        with pytest.raises(AttachmentError, match=r"limit of 300 bytes|the limit is 300"):
            edxml.read(data, limits=edxml.Limits(max_attachment_bytes=300))


def test_bad_agency_identifier_keeps_its_own_code(doc_text):
    from gateway.edxml.parse import message_from_tree
    from gateway.edxml.xmlsafe import parse_xml
    from gateway.errors import AgencyCodeError

    text = doc_text.replace("<edXML:OrganId>000.00.11.H58</edXML:OrganId>", "<edXML:OrganId>Sở Nội vụ</edXML:OrganId>")
    with pytest.raises(AgencyCodeError) as caught:
        message_from_tree(parse_xml(text.encode()))
    assert caught.value.code == "EDX108" and "edXML:OrganId" in caught.value.where
