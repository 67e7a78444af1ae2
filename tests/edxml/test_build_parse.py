"""Build emits the VNPT layout; parse reads it back with every field."""

from dataclasses import replace
from datetime import date

import pytest
from lxml import etree

from gateway import edxml
from gateway.edxml import SchemaMode, StatusCode
from gateway.edxml.ns import EDXML
from gateway.errors import BuildError, SchemaViolation
from tests.messages import full_document, full_status

E = f"{{{EDXML}}}"


def test_document_round_trip_keeps_every_field(document):
    assert edxml.read(edxml.build(document)) == document


@pytest.mark.parametrize("code", list(StatusCode))
def test_status_round_trip_for_every_code(code):
    status = full_status(code)
    assert edxml.read(edxml.build(status)) == status


CODE_LIST_VALUES = [
    *(("priority", value) for value in edxml.Priority),
    *(("steering", value) for value in edxml.SteeringType),
    *(("business", value) for value in edxml.BusinessDocType),
]


@pytest.mark.parametrize(("field", "value"), CODE_LIST_VALUES, ids=[f"{f}-{v.value}" for f, v in CODE_LIST_VALUES])
def test_every_code_list_value_round_trips_and_is_strictly_valid(document, field, value):
    if field == "priority":
        changed = replace(document, other_info=replace(document.other_info, priority=value))
    elif field == "steering":
        changed = replace(document, steering_type=value)
    else:
        changed = replace(document, business=replace(document.business, business_doc_type=value))
    assert edxml.read(edxml.build(changed), mode=SchemaMode.STRICT) == changed


def test_built_messages_pass_the_strict_schemas(document, status):
    edxml.read(edxml.build(document), mode=SchemaMode.STRICT)
    edxml.read(edxml.build(status), mode=SchemaMode.STRICT)


def test_layout_is_the_vnpt_one(document):
    text = edxml.build(document).decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    )
    assert '<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">' in text
    assert "<edXML:MessageHeader>" in text
    # attachments outside the envelope, unprefixed, but the payload keeps its own prefix
    assert "<AttachmentEncoded>" in text and "<Attachment>" in text
    assert '<edXML:ContentTransferEncoded xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">' in text
    assert text.count("<ContentId>cid:att-0</ContentId>") == 1
    assert text.count("<edXML:ContentId>cid:att-0</edXML:ContentId>") == 1
    assert "<edXML:PromulgationDate>2023/07/03</edXML:PromulgationDate>" in text
    assert "<edXML:Timestamp>2023/07/03 08:30:00</edXML:Timestamp>" in text
    assert "<edXML:Direction>false</edXML:Direction>" in text


def _child_names(parent: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in parent if isinstance(c.tag, str)]


def test_children_follow_vnpt_order(document, status):
    root = etree.fromstring(edxml.build(document))
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader")
    assert _child_names(header) == [
        "From",
        "To",
        "To",
        "DocumentId",
        "Code",
        "PromulgationInfo",
        "DocumentType",
        "Subject",
        "Content",
        "SignerInfo",
        "DueDate",
        "OtherInfo",
        "ResponseFor",
        "SteeringType",
        "ResponseForTask",
        "ApplicationType",
        "ToPlaces",
    ]
    assert _child_names(header.find(f"{E}From")) == [
        "OrganId",
        "OrganizationInCharge",
        "OrganName",
        "OrganAdd",
        "Email",
        "Telephone",
        "Fax",
        "Website",
    ]
    assert _child_names(header.find(f"{E}ResponseFor")) == ["OrganId", "Code", "PromulgationDate", "DocumentId"]
    traces = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
    assert _child_names(traces) == ["Bussiness", "TraceHeader"]
    assert _child_names(traces.find(f"{E}Bussiness")) == [
        "DocumentId",
        "BussinessDocType",
        "BussinessDocReason",
        "Paper",
        "BussinessDocumentInfo",
        "ReplacementInfoList",
        "StaffInfo",
    ]
    attachment = root.find(f"{E}AttachmentEncoded/{E}Attachment")
    assert _child_names(attachment) == [
        "ContentId",
        "AttachmentName",
        "Description",
        "ContentType",
        "ContentTransferEncoded",
    ]
    status_root = etree.fromstring(edxml.build(status))
    status_header = status_root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader")
    assert _child_names(status_header) == ["From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"]
    assert _child_names(status_header.find(f"{E}ResponseFor")) == ["OrganId", "Code", "DocumentId", "PromulgationDate"]
    assert status_root.find(f"{E}edXMLEnvelope/{E}edXMLBody") is None


def test_minimal_document_round_trips_and_absent_stays_absent():
    minimal = edxml.Document(
        sender=edxml.Organization(edxml.AgencyCode("000.00.00.H58")),
        to=(edxml.Organization(edxml.AgencyCode("000.00.00.G22")),),
        subject="Thử",
    )
    data = edxml.build(minimal)
    assert b"DocumentId" not in data and b"OtherInfo" not in data and b"AttachmentEncoded" not in data
    assert edxml.read(data) == minimal


def test_empty_elements_are_kept_apart_from_absent_ones(document):
    with_empty = replace(document, sender=replace(document.sender, organ_add="", fax=None))
    data = edxml.build(with_empty)
    assert b"<edXML:OrganAdd></edXML:OrganAdd>" in data
    parsed = edxml.read(data)
    assert parsed.sender.organ_add == "" and parsed.sender.fax is None


def test_manifest_that_differs_from_attachments_is_kept(document):
    differing = replace(
        document,
        manifest=tuple(
            edxml.ManifestReference(a.content_id, "application/zip", None, a.attachment_name)
            for a in document.attachments
        ),
    )
    parsed = edxml.read(edxml.build(differing))
    assert parsed.manifest == differing.manifest
    assert parsed.attachments[0].content_type == "application/pdf"


def test_paper_flag_and_business_types(document):
    assert document.paper is True
    assert edxml.read(edxml.build(replace(document, business=None))).paper is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: replace(d, to=()), "recipient"),
        (lambda d: replace(d, subject="  "), "Subject"),
        (lambda d: replace(d, subject="bad \x01 text"), "XML cannot carry"),
        (lambda d: replace(d, attachments=d.attachments + d.attachments[:1]), "share a ContentId"),
        (lambda d: replace(d, manifest=d.manifest_references()[:1]), "different ContentIds"),
    ],
)
def test_build_refuses_models_it_cannot_write(document, change, message):
    with pytest.raises(BuildError, match=message) as caught:
        edxml.build(change(document))
    assert caught.value.code == "EDX110"


def test_strict_schema_names_what_a_receiver_would_miss(document):
    without_code = replace(document, code=None)
    data = edxml.build(without_code)
    edxml.read(data)  # lenient: fine
    with pytest.raises(SchemaViolation, match="Code") as caught:
        edxml.read(data, mode=SchemaMode.STRICT)
    assert "line" in caught.value.where


def test_strict_schema_refuses_lenient_agency_codes(document):
    wild = replace(document, sender=replace(document.sender, organ_id=edxml.AgencyCode("vxp.saas.03")))
    data = edxml.build(wild)
    assert edxml.read(data).sender.organ_id.text == "vxp.saas.03"
    with pytest.raises(SchemaViolation, match="OrganId"):
        edxml.read(data, mode=SchemaMode.STRICT)


def test_dates_in_other_forms_are_read_and_written_back_as_edxml_dates(document):
    data = edxml.build(document).replace(b"<edXML:DueDate>2023/07/31<", b"<edXML:DueDate>31/07/2023<")
    parsed = edxml.read(data)
    assert parsed.due_date == date(2023, 7, 31)
    assert b"<edXML:DueDate>2023/07/31</edXML:DueDate>" in edxml.build(parsed)


def test_schemas_compile_and_validate_from_many_threads_at_once():
    """The axis validates in worker threads; compiling XSDs with includes concurrently once failed
    (about one round in five, before compilation took a lock)."""
    import threading

    data = edxml.build(full_document())
    failures: list[BaseException] = []
    for _ in range(10):  # every round starts new threads, so every round compiles afresh
        barrier = threading.Barrier(8)

        def work(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                for _ in range(3):
                    edxml.read(data, mode=SchemaMode.STRICT)
                    edxml.read(data)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
