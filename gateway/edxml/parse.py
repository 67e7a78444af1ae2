"""Read an edXML tree into the model, leniently (facts §1-§2, "How to use this sheet").

Accepts what real files contain: children in any order, ``cid:`` on either side, the
three Signature variants, prefixed or unprefixed AttachmentEncoded, missing optional
elements, NFC or NFD text. Refuses anything that is not edXML with an error naming the
element and its line. Works on a tree from :func:`gateway.edxml.xmlsafe.parse_xml`.
"""

from __future__ import annotations

from lxml import etree

from gateway.edxml import ns
from gateway.edxml.agency import AgencyCode
from gateway.edxml.attachments import _attachments, _derived_or_none
from gateway.edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType
from gateway.edxml.lift import NOT_LIFTED, Lifted
from gateway.edxml.model import (
    Business,
    BusinessDocumentInfo,
    Code,
    Document,
    DocumentType,
    Message,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from gateway.edxml.reading import (
    Children,
    Envelope,
    agency_value,
    checked,
    flag,
    integer,
    non_negative,
    where,
)
from gateway.edxml.text import parse_date, parse_timestamp
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, Limits
from gateway.errors import StructureError

# --- pieces ----------------------------------------------------------------------------------

_ORGANIZATION = frozenset(
    {"OrganId", "OrganizationInCharge", "OrganName", "OrganAdd", "Email", "Telephone", "Fax", "Website"}
)


def _organization(el: etree._Element) -> Organization:
    c = Children(el, _ORGANIZATION)
    organ_id = c.typed("OrganId", agency_value)
    if organ_id is None:
        raise StructureError(f"{ns.pretty(el.tag)} lacks edXML:OrganId", where=where(el))
    return Organization(
        organ_id=organ_id,
        organization_in_charge=c.text("OrganizationInCharge"),
        organ_name=c.text("OrganName"),
        organ_add=c.text("OrganAdd"),
        email=c.text("Email"),
        telephone=c.text("Telephone"),
        fax=c.text("Fax"),
        website=c.text("Website"),
    )


def _response_for(el: etree._Element) -> ResponseFor:
    c = Children(el, frozenset({"OrganId", "Code", "PromulgationDate", "DocumentId"}))
    return ResponseFor(
        organ_id=c.typed("OrganId", agency_value),
        code=c.text("Code"),
        promulgation_date=c.typed("PromulgationDate", parse_date),
        document_id=c.text("DocumentId"),
    )


def _staff_info(el: etree._Element) -> StaffInfo:
    c = Children(el, frozenset({"Department", "DepartmentId", "Staff", "StaffId", "Email", "Mobile"}))
    return StaffInfo(
        department=c.text("Department"),
        department_id=c.text("DepartmentId"),
        staff=c.text("Staff"),
        staff_id=c.text("StaffId"),
        email=c.text("Email"),
        mobile=c.text("Mobile"),
    )


def _trace_header(el: etree._Element) -> TraceHeader:
    c = Children(el, frozenset({"OrganId", "Timestamp"}))
    return TraceHeader(organ_id=c.typed("OrganId", agency_value), timestamp=c.typed("Timestamp", parse_timestamp))


def _business(el: etree._Element) -> Business:
    c = Children(
        el,
        frozenset(
            {
                "DocumentId",
                "BussinessDocType",
                "BussinessDocReason",
                "Paper",
                "BussinessDocumentInfo",
                "ReplacementInfoList",
                "StaffInfo",
            }
        ),
    )
    doc_type = c.typed("BussinessDocType", BusinessDocType.from_wire)
    replacements = None
    replacement_list = c.opt("ReplacementInfoList")
    if replacement_list is not None:
        replacements = tuple(
            _replacement(r) for r in Children(replacement_list, frozenset({"ReplacementInfo"})).many("ReplacementInfo")
        )
    return Business(
        business_doc_type=doc_type if doc_type is not None else BusinessDocType.NEW,
        document_id=c.text("DocumentId"),
        business_doc_reason=c.text("BussinessDocReason"),
        paper=c.typed("Paper", flag),
        document_infos=tuple(_business_document_info(i) for i in c.many("BussinessDocumentInfo")),
        replacements=replacements,
        staff=tuple(_staff_info(s) for s in c.many("StaffInfo")),
    )


def _business_document_info(el: etree._Element) -> BusinessDocumentInfo:
    c = Children(el, frozenset({"DocumentInfo", "DocumentReceiver", "ReceiverList"}))
    receivers = None
    receiver_list = c.opt("ReceiverList")
    if receiver_list is not None:
        receivers = tuple(_receiver(r) for r in Children(receiver_list, frozenset({"Receiver"})).many("Receiver"))
    return BusinessDocumentInfo(
        document_info=c.typed("DocumentInfo", integer),
        document_receiver=c.typed("DocumentReceiver", integer),
        receivers=receivers,
    )


def _receiver(el: etree._Element) -> Receiver:
    c = Children(el, frozenset({"OrganId", "ReceiverType"}))
    organ_id = c.typed("OrganId", agency_value)
    receiver_type = c.typed("ReceiverType", ReceiverType.from_wire)
    if organ_id is None or receiver_type is None:
        raise StructureError("Receiver needs OrganId and ReceiverType", where=where(el))
    return Receiver(organ_id=organ_id, receiver_type=receiver_type)


def _replacement(el: etree._Element) -> ReplacementInfo:
    c = Children(el, frozenset({"DocumentId", "OrganIdList"}))
    organ_ids: tuple[AgencyCode, ...] = ()
    id_list = c.opt("OrganIdList")
    if id_list is not None:
        ids = Children(id_list, frozenset({"OrganId"}))
        organ_ids = tuple(checked(el, agency_value) for el in ids.many("OrganId"))
    return ReplacementInfo(document_id=c.text("DocumentId"), organ_ids=organ_ids)


# --- messages ----------------------------------------------------------------------------------

_DOCUMENT_HEADER = frozenset(
    {
        "From",
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
    }
)
_STATUS_HEADER = frozenset({"From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"})


def message_from_tree(root: etree._Element, limits: Limits = DEFAULT_LIMITS, lifted: Lifted = NOT_LIFTED) -> Message:
    """Read a parsed edXML tree as a Document or a StatusMessage.

    ``lifted``: the runs cut out of the tree by :func:`gateway.edxml.xmlsafe.parse_lifted`,
    read from there instead of the tree.
    """
    frame = Envelope(root)
    if frame.is_status:
        return _status(frame)
    return _document(frame, limits, lifted)


def _trace(frame: Envelope) -> tuple[tuple[TraceHeader, ...], Business | None]:
    if frame.trace_header_list is None:
        return (), None
    c = Children(frame.trace_header_list, frozenset({"TraceHeader", "Bussiness"}))
    business_el = c.opt("Bussiness")
    return (
        tuple(_trace_header(t) for t in c.many("TraceHeader")),
        None if business_el is None else _business(business_el),
    )


def _status(frame: Envelope) -> StatusMessage:
    if frame.body is not None or frame.attachment_encoded is not None:
        where_el = frame.body if frame.body is not None else frame.attachment_encoded
        raise StructureError("a status message carries no body or attachments", where=where(where_el))
    c = Children(frame.message_header, _STATUS_HEADER)
    trace_headers, business = _trace(frame)
    if business is not None:
        raise StructureError("a status message carries no Bussiness block", where=where(frame.trace_header_list))
    status_code = c.typed("StatusCode", StatusCode.from_wire)
    if status_code is None:
        raise StructureError("StatusCode is empty", where=where(c.one("StatusCode")))
    staff = c.opt("StaffInfo")
    return StatusMessage(
        sender=_organization(c.one("From")),
        response_for=_response_for(c.one("ResponseFor")),
        status_code=status_code,
        staff_info=None if staff is None else _staff_info(staff),
        description=c.text("Description"),
        timestamp=c.typed("Timestamp", parse_timestamp),
        trace_headers=trace_headers,
    )


def _document(frame: Envelope, limits: Limits, lifted: Lifted) -> Document:
    c = Children(frame.message_header, _DOCUMENT_HEADER)
    to = c.many("To")
    if not to:
        raise StructureError("MessageHeader names no recipient (edXML:To)", where=where(frame.message_header))
    recipients = tuple(_organization(t) for t in to)
    seen: set[AgencyCode] = set()
    for element, organization in zip(to, recipients, strict=True):
        if organization.organ_id in seen:
            raise StructureError(f"recipient {organization.organ_id} is named twice", where=where(element))
        seen.add(organization.organ_id)
    trace_headers, business = _trace(frame)
    manifest, attachments = _attachments(frame, limits, lifted)
    document = Document(
        sender=_organization(c.one("From")),
        to=recipients,
        subject=c.required_text("Subject"),
        document_id=c.text("DocumentId"),
        code=_code(c.opt("Code")),
        promulgation_info=_promulgation(c.opt("PromulgationInfo")),
        document_type=_document_type(c.opt("DocumentType")),
        content=c.text("Content"),
        signer_info=_signer(c.opt("SignerInfo")),
        due_date=c.typed("DueDate", parse_date),
        other_info=_other_info(c.opt("OtherInfo")),
        response_for=tuple(_response_for(r) for r in c.many("ResponseFor")),
        steering_type=c.typed("SteeringType", SteeringType.from_wire),
        response_for_task=_list_of(c.opt("ResponseForTask"), "TaskCode"),
        application_type=c.text("ApplicationType"),
        to_places=_list_of(c.opt("ToPlaces"), "Place"),
        trace_headers=trace_headers,
        business=business,
        attachments=attachments,
        manifest=manifest,
    )
    return _derived_or_none(document)


def _code(el: etree._Element | None) -> Code | None:
    if el is None:
        return None
    c = Children(el, frozenset({"CodeNumber", "CodeNotation"}))
    return Code(code_number=c.text("CodeNumber"), code_notation=c.text("CodeNotation"))


def _promulgation(el: etree._Element | None) -> PromulgationInfo | None:
    if el is None:
        return None
    c = Children(el, frozenset({"Place", "PromulgationDate"}))
    return PromulgationInfo(place=c.text("Place"), promulgation_date=c.typed("PromulgationDate", parse_date))


def _document_type(el: etree._Element | None) -> DocumentType | None:
    if el is None:
        return None
    c = Children(el, frozenset({"Type", "TypeDetail", "TypeName"}))
    return DocumentType(
        type=c.typed("Type", integer), type_detail=c.typed("TypeDetail", integer), type_name=c.text("TypeName")
    )


def _signer(el: etree._Element | None) -> SignerInfo | None:
    if el is None:
        return None
    c = Children(el, frozenset({"Competence", "Position", "FullName"}))
    return SignerInfo(competence=c.text("Competence"), position=c.text("Position"), full_name=c.text("FullName"))


def _other_info(el: etree._Element | None) -> OtherInfo | None:
    if el is None:
        return None
    c = Children(
        el,
        frozenset(
            {
                "Priority",
                "SphereOfPromulgation",
                "TyperNotation",
                "PromulgationAmount",
                "PageAmount",
                "ReplyFors",
                "Direction",
                "ReferenceCodes",
                "Appendixes",
            }
        ),
    )
    return OtherInfo(
        priority=c.typed("Priority", Priority.from_wire),
        sphere_of_promulgation=c.text("SphereOfPromulgation"),
        typer_notation=c.text("TyperNotation"),
        promulgation_amount=c.typed("PromulgationAmount", non_negative),
        page_amount=c.typed("PageAmount", non_negative),
        reply_fors=c.text("ReplyFors"),
        direction=c.typed("Direction", flag),
        reference_codes=c.text("ReferenceCodes"),
        appendixes=_list_of(c.opt("Appendixes"), "Appendix"),
    )


def _list_of(el: etree._Element | None, item: str) -> tuple[str, ...] | None:
    if el is None:
        return None
    return Children(el, frozenset({item})).texts(item)
