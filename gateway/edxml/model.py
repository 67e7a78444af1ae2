"""Typed, frozen values for edXML documents and status messages (facts §1.2, §2.1).

Field names follow the element names in snake_case. ``None`` means "element absent";
an empty string means "element present but empty" (real files carry ``<OrganAdd/>``),
so that a parsed message can be written back with every field it had. Dates are the
agency's wall-clock dates; timestamps are naive datetimes in Vietnam time
(Asia/Ho_Chi_Minh), as edXML writes them without a zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from gateway.edxml.agency import AgencyCode
from gateway.edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType


@dataclass(frozen=True)
class Organization:
    """From / To: an agency (cơ quan, tổ chức) with its contact details."""

    organ_id: AgencyCode
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class Code:
    """Số và ký hiệu văn bản: ``CodeNumber/CodeNotation``, e.g. 7816 / VPCP-TTĐT."""

    code_number: str | None = None
    code_notation: str | None = None

    def __str__(self) -> str:
        return f"{self.code_number or ''}/{self.code_notation or ''}"


@dataclass(frozen=True)
class PromulgationInfo:
    """Nơi và ngày ban hành."""

    place: str | None = None
    promulgation_date: date | None = None


@dataclass(frozen=True)
class DocumentType:
    """Loại văn bản: Type (1 or 2 in practice), TypeDetail, TypeName (e.g. "Công văn")."""

    type: int | None = None
    type_detail: int | None = None
    type_name: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    """Người ký: thẩm quyền, chức vụ, họ tên."""

    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class OtherInfo:
    """Thông tin khác: độ khẩn, phạm vi ban hành, người đánh máy, số bản, số trang, phụ lục."""

    priority: Priority | None = None
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    reply_fors: str | None = None
    direction: bool | None = None
    reference_codes: str | None = None
    appendixes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ResponseFor:
    """The document this one answers (in a document) or reports on (in a status message).

    ``code`` is ``CodeNumber/CodeNotation`` as one string (e.g. ``7816/VPCP-TTĐT``).
    """

    organ_id: AgencyCode | None = None
    code: str | None = None
    promulgation_date: date | None = None
    document_id: str | None = None


@dataclass(frozen=True)
class StaffInfo:
    """Cán bộ xử lý: phòng ban, cán bộ, email, điện thoại."""

    department: str | None = None
    department_id: str | None = None
    staff: str | None = None
    staff_id: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class TraceHeader:
    """One hop: who handled the message and when. Relays append these."""

    organ_id: AgencyCode | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Receiver:
    organ_id: AgencyCode
    receiver_type: ReceiverType


@dataclass(frozen=True)
class BusinessDocumentInfo:
    """What an update (BussinessDocType 2) changes: metadata (1/0), recipients (1/0)."""

    document_info: int | None = None
    document_receiver: int | None = None
    receivers: tuple[Receiver, ...] | None = None


@dataclass(frozen=True)
class ReplacementInfo:
    """A document being replaced (BussinessDocType 3) and who had received it."""

    document_id: str | None = None
    organ_ids: tuple[AgencyCode, ...] = ()


@dataclass(frozen=True)
class Business:
    """The ``Bussiness`` block (sic): new, revoke, update or replace, and the paper flag."""

    business_doc_type: BusinessDocType = BusinessDocType.NEW
    document_id: str | None = None
    business_doc_reason: str | None = None
    paper: bool | None = None
    document_infos: tuple[BusinessDocumentInfo, ...] = ()
    replacements: tuple[ReplacementInfo, ...] | None = None
    staff: tuple[StaffInfo, ...] = ()


@dataclass(frozen=True)
class ManifestReference:
    """edXMLManifest/Reference: how the envelope announces one attachment."""

    content_id: str
    content_type: str | None = None
    description: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True)
class Attachment:
    """AttachmentEncoded/Attachment: a file carried in the message, decoded.

    ``content_id`` is stored without its ``cid:`` prefix. ``attachment_name`` is the name
    as the sender wrote it; use :func:`gateway.edxml.names.safe_file_name` before it goes
    anywhere near a file system.
    """

    content_id: str
    attachment_name: str
    data: bytes = field(repr=False)
    content_type: str | None = "application/octet-stream"
    description: str | None = None
    field_name: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class Document:
    """An edXML document message (văn bản điện tử, "edoc")."""

    sender: Organization
    to: tuple[Organization, ...]
    subject: str
    document_id: str | None = None
    code: Code | None = None
    promulgation_info: PromulgationInfo | None = None
    document_type: DocumentType | None = None
    content: str | None = None
    signer_info: SignerInfo | None = None
    due_date: date | None = None
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: SteeringType | None = None
    response_for_task: tuple[str, ...] | None = None
    application_type: str | None = None
    to_places: tuple[str, ...] | None = None
    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    attachments: tuple[Attachment, ...] = ()
    # None: derive the manifest from the attachments when building. A parsed message keeps
    # what its manifest said, which may differ (real files disagree on ContentType).
    manifest: tuple[ManifestReference, ...] | None = None

    @property
    def paper(self) -> bool:
        """True when a paper copy is also sent (Bussiness/Paper = 1)."""
        return bool(self.business and self.business.paper)

    def manifest_references(self) -> tuple[ManifestReference, ...]:
        if self.manifest is not None:
            return self.manifest
        return tuple(
            ManifestReference(
                content_id=a.content_id,
                content_type=a.content_type,
                description=a.description,
                attachment_name=a.attachment_name,
            )
            for a in self.attachments
        )


@dataclass(frozen=True)
class StatusMessage:
    """An edXML status message (phản hồi): what happened to a document at one agency."""

    sender: Organization
    response_for: ResponseFor
    status_code: StatusCode
    staff_info: StaffInfo | None = None
    description: str | None = None
    timestamp: datetime | None = None
    # Status messages normally carry no TraceHeaderList; one appended by a relay is kept.
    trace_headers: tuple[TraceHeader, ...] = ()


Message = Document | StatusMessage


def routed_to(message: Message) -> tuple[str, ...]:
    """The agency codes the axis delivers ``message`` to, in the message's order.

    A document goes to each To; a status to the agency whose document it answers
    (ResponseFor/OrganId), or nowhere when it names none, which the axis refuses.
    """
    if isinstance(message, Document):
        return tuple(t.organ_id.text for t in message.to)
    target = message.response_for.organ_id
    return (target.text,) if target is not None else ()
