"""Write the model as edXML in the VNPT layout and child order (facts §1.1-§1.3, §2.1).

Root ``edXML`` declares the namespace as default; ``edXML:edXMLEnvelope`` declares it
again with the ``edXML`` prefix, so everything inside the envelope is prefixed;
``AttachmentEncoded`` and its children stay unprefixed, except
``edXML:ContentTransferEncoded``, which declares the prefix itself. Dates are
``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss``, ContentIds carry ``cid:`` on both sides.
"""

from __future__ import annotations

from datetime import date, datetime

import pybase64
from lxml import etree

from gateway.edxml import ns
from gateway.edxml.codes import _Coded
from gateway.edxml.lift import MIN_RUN, Builder, Lifted
from gateway.edxml.model import (
    Attachment,
    Business,
    Document,
    ManifestReference,
    Message,
    Organization,
    ResponseFor,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from gateway.edxml.text import clean, format_date, format_timestamp
from gateway.errors import BuildError

_Value = str | int | bool | date | datetime | _Coded | object | None


def build(message: Message, *, pretty: bool = True) -> bytes:
    """Serialise a Document or StatusMessage as UTF-8 edXML bytes, unsigned."""
    return serialize(build_tree(message, pretty=pretty))


def serialize(root: etree._Element) -> bytes:
    """UTF-8 bytes with the declaration written as the VNPT library writes it."""
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def build_lifted(message: Message, *, pretty: bool = True) -> tuple[etree._Element, Lifted]:
    """The tree with each large attachment's base64 left out (a token in its place).

    Sign it with the Lifted (``sign_tree(root, identity, lifted)``) and write
    ``lifted.expand(serialize(root))``: the base64 is encoded piece by piece as it is hashed
    and as it is written, and never stands whole in memory or in the tree.
    """
    builder = Builder()
    return build_tree(message, pretty=pretty, builder=builder), builder.lifted()


def build_tree(message: Message, *, pretty: bool = True, builder: Builder | None = None) -> etree._Element:
    root = etree.Element(ns.q("edXML"), nsmap={None: ns.EDXML})
    envelope = etree.SubElement(root, ns.q("edXMLEnvelope"), nsmap={ns.PREFIX: ns.EDXML})
    header = _sub(envelope, "edXMLHeader")
    if isinstance(message, StatusMessage):
        _status_header(_sub(header, "MessageHeader"), message)
        if message.trace_headers:
            _trace_list(header, message.trace_headers, None)
    elif isinstance(message, Document):
        _document_header(_sub(header, "MessageHeader"), message)
        _trace_list(header, message.trace_headers, message.business)
        _body(envelope, message)
        if message.attachments:
            _attachments(root, message.attachments, builder)
    else:
        raise BuildError(f"cannot build {type(message).__name__}: expected Document or StatusMessage")
    if pretty:
        etree.indent(root, space="  ")
    return root


# --- helpers -------------------------------------------------------------------------------------


def _sub(parent: etree._Element, local: str) -> etree._Element:
    return etree.SubElement(parent, ns.q(local))


def _wire(value: _Value) -> str:
    if isinstance(value, _Coded):
        return value.wire
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return format_date(value)
    return clean(str(value))


def _text(parent: etree._Element, local: str, value: _Value, *, boolean_words: bool = False) -> None:
    """Add ``<local>value</local>`` unless value is None (absent); "" gives an empty element."""
    if value is None:
        return
    el = _sub(parent, local)
    text = ("true" if value else "false") if boolean_words and isinstance(value, bool) else _wire(value)
    try:
        el.text = text
    except ValueError:
        raise BuildError(f"edXML:{local} holds characters XML cannot carry: {text[:40]!r}") from None


def _list(parent: etree._Element, local: str, item: str, values: tuple[str, ...] | None) -> None:
    if values is None:
        return
    container = _sub(parent, local)
    for value in values:
        _text(container, item, value)


def _organization(parent: etree._Element, local: str, org: Organization) -> None:
    el = _sub(parent, local)
    _text(el, "OrganId", org.organ_id)
    _text(el, "OrganizationInCharge", org.organization_in_charge)
    _text(el, "OrganName", org.organ_name)
    _text(el, "OrganAdd", org.organ_add)
    _text(el, "Email", org.email)
    _text(el, "Telephone", org.telephone)
    _text(el, "Fax", org.fax)
    _text(el, "Website", org.website)


def _response_for(parent: etree._Element, response: ResponseFor, *, status_order: bool) -> None:
    el = _sub(parent, "ResponseFor")
    _text(el, "OrganId", response.organ_id)
    _text(el, "Code", response.code)
    # The VNPT library writes these two in opposite orders in documents and in status messages.
    if status_order:
        _text(el, "DocumentId", response.document_id)
        _text(el, "PromulgationDate", response.promulgation_date)
    else:
        _text(el, "PromulgationDate", response.promulgation_date)
        _text(el, "DocumentId", response.document_id)


def _staff(parent: etree._Element, staff: StaffInfo) -> None:
    el = _sub(parent, "StaffInfo")
    _text(el, "Department", staff.department)
    _text(el, "DepartmentId", staff.department_id)
    _text(el, "Staff", staff.staff)
    _text(el, "StaffId", staff.staff_id)
    _text(el, "Email", staff.email)
    _text(el, "Mobile", staff.mobile)


# --- headers -----------------------------------------------------------------------------------


def _status_header(el: etree._Element, status: StatusMessage) -> None:
    _organization(el, "From", status.sender)
    _response_for(el, status.response_for, status_order=True)
    if status.staff_info is not None:
        _staff(el, status.staff_info)
    _text(el, "StatusCode", status.status_code)
    _text(el, "Description", status.description)
    _text(el, "Timestamp", status.timestamp)


def _document_header(el: etree._Element, doc: Document) -> None:
    if not doc.to:
        raise BuildError("a document needs at least one recipient (To)")
    if not clean(doc.subject):
        raise BuildError("a document needs a Subject (trích yếu)")
    _organization(el, "From", doc.sender)
    for recipient in doc.to:
        _organization(el, "To", recipient)
    _text(el, "DocumentId", doc.document_id)
    if doc.code is not None:
        code = _sub(el, "Code")
        _text(code, "CodeNumber", doc.code.code_number)
        _text(code, "CodeNotation", doc.code.code_notation)
    if doc.promulgation_info is not None:
        info = _sub(el, "PromulgationInfo")
        _text(info, "Place", doc.promulgation_info.place)
        _text(info, "PromulgationDate", doc.promulgation_info.promulgation_date)
    if doc.document_type is not None:
        kind = _sub(el, "DocumentType")
        _text(kind, "Type", doc.document_type.type)
        _text(kind, "TypeDetail", doc.document_type.type_detail)
        _text(kind, "TypeName", doc.document_type.type_name)
    _text(el, "Subject", doc.subject)
    _text(el, "Content", doc.content)
    if doc.signer_info is not None:
        signer = _sub(el, "SignerInfo")
        _text(signer, "Competence", doc.signer_info.competence)
        _text(signer, "Position", doc.signer_info.position)
        _text(signer, "FullName", doc.signer_info.full_name)
    _text(el, "DueDate", doc.due_date)
    if doc.other_info is not None:
        other = _sub(el, "OtherInfo")
        info = doc.other_info
        _text(other, "Priority", info.priority)
        _text(other, "SphereOfPromulgation", info.sphere_of_promulgation)
        _text(other, "TyperNotation", info.typer_notation)
        _text(other, "PromulgationAmount", info.promulgation_amount)
        _text(other, "PageAmount", info.page_amount)
        _text(other, "ReplyFors", info.reply_fors)
        _text(other, "Direction", info.direction, boolean_words=True)
        _text(other, "ReferenceCodes", info.reference_codes)
        _list(other, "Appendixes", "Appendix", info.appendixes)
    for response in doc.response_for:
        _response_for(el, response, status_order=False)
    _text(el, "SteeringType", doc.steering_type)
    _list(el, "ResponseForTask", "TaskCode", doc.response_for_task)
    _text(el, "ApplicationType", doc.application_type)
    _list(el, "ToPlaces", "Place", doc.to_places)


def _trace_list(header: etree._Element, traces: tuple[TraceHeader, ...], business: Business | None) -> None:
    el = _sub(header, "TraceHeaderList")
    if business is not None:
        _business(el, business)
    for trace in traces:
        hop = _sub(el, "TraceHeader")
        _text(hop, "OrganId", trace.organ_id)
        _text(hop, "Timestamp", trace.timestamp)


def _business(parent: etree._Element, business: Business) -> None:
    el = _sub(parent, "Bussiness")
    _text(el, "DocumentId", business.document_id)
    _text(el, "BussinessDocType", business.business_doc_type)
    _text(el, "BussinessDocReason", business.business_doc_reason)
    _text(el, "Paper", business.paper)
    for info in business.document_infos:
        info_el = _sub(el, "BussinessDocumentInfo")
        _text(info_el, "DocumentInfo", info.document_info)
        _text(info_el, "DocumentReceiver", info.document_receiver)
        if info.receivers is not None:
            receivers = _sub(info_el, "ReceiverList")
            for receiver in info.receivers:
                receiver_el = _sub(receivers, "Receiver")
                _text(receiver_el, "OrganId", receiver.organ_id)
                _text(receiver_el, "ReceiverType", receiver.receiver_type)
    if business.replacements is not None:
        replacements = _sub(el, "ReplacementInfoList")
        for replacement in business.replacements:
            item = _sub(replacements, "ReplacementInfo")
            _text(item, "DocumentId", replacement.document_id)
            ids = _sub(item, "OrganIdList")
            for organ_id in replacement.organ_ids:
                _text(ids, "OrganId", organ_id)
    for staff in business.staff:
        _staff(el, staff)


# --- body and attachments --------------------------------------------------------------------------


def _body(envelope: etree._Element, doc: Document) -> None:
    references = doc.manifest_references()
    announced = [r.content_id for r in references]
    carried = [a.content_id for a in doc.attachments]
    if len(set(carried)) != len(carried):
        raise BuildError("two attachments share a ContentId")
    if sorted(announced) != sorted(carried):
        raise BuildError("the manifest and the attachments name different ContentIds")
    manifest = _sub(_sub(envelope, "edXMLBody"), "edXMLManifest")
    manifest.set("version", "1.0")
    for reference in references:
        _reference(manifest, reference)


def _cid(content_id: str) -> str:
    return f"cid:{content_id}"


def _reference(manifest: etree._Element, reference: ManifestReference) -> None:
    el = _sub(manifest, "Reference")
    _text(el, "ContentId", _cid(reference.content_id))
    _text(el, "ContentType", reference.content_type)
    _text(el, "Description", reference.description)
    _text(el, "AttachmentName", reference.attachment_name)


def _attachments(root: etree._Element, attachments: tuple[Attachment, ...], builder: Builder | None) -> None:
    container = _sub(root, "AttachmentEncoded")
    for attachment in attachments:
        el = _sub(container, "Attachment")
        _text(el, "ContentId", _cid(attachment.content_id))
        _text(el, "AttachmentName", attachment.attachment_name)
        _text(el, "Description", attachment.description)
        _text(el, "FieldName", attachment.field_name)
        _text(el, "MimeType", attachment.mime_type)
        _text(el, "ContentType", attachment.content_type)
        payload = etree.SubElement(el, ns.q("ContentTransferEncoded"), nsmap={ns.PREFIX: ns.EDXML})
        if builder is not None and len(attachment.data) * 4 // 3 >= MIN_RUN:
            payload.text = builder.add(attachment.data)
        else:
            payload.text = pybase64.b64encode(attachment.data)  # bytes: lxml takes ASCII as is, no str copy
