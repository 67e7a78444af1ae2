"""Turning what the document system hands over into edXML messages (no I/O here).

``document.json`` of a drop-folder job (and the `send` command) becomes a Document; a
received document and a status code become a StatusMessage. The schema of document.json
is documented in docs/intake.md; every refusal names the key.
"""

from __future__ import annotations

import json
import mimetypes
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway import edxml
from gateway.errors import AgencyCodeError, IntakeError, RecipientNotInDirectory

DEFAULT_NOTATION = "EDXML-GW"
# edXML has no field saying "digitised from paper" (số hóa từ văn bản giấy); this gateway writes
# this value into MessageHeader/ApplicationType, whose meaning no public source defines.
DIGITIZED_MARK = "digitized-from-paper"


@dataclass(frozen=True)
class FileInput:
    """An attachment as the document system gave it: its bytes and how to present them."""

    name: str
    data: bytes
    content_type: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Composed:
    document: edxml.Document
    paper: bool
    digitized: bool


def compose_document(
    job: Mapping[str, Any],
    files: Sequence[FileInput],
    *,
    sender: edxml.Organization,
    names: Mapping[str, str],
    sequence: int,
    where: str,
) -> Composed:
    """A Document from a job description; ``names`` maps agency codes to names (the axis directory)."""
    reader = _Job(job, where)
    today = edxml.now_vietnam().date()
    recipients = reader.recipients(names)
    code_number = reader.text("code_number") or str(sequence)
    code_notation = reader.text("code_notation") or DEFAULT_NOTATION
    promulgation_date = reader.date("promulgation_date") or today
    document_id = reader.text("document_id") or (
        f"{sender.organ_id},{promulgation_date:%Y/%m/%d},{code_number}/{code_notation}"
        if reader.text("code_number")
        else f"{sender.organ_id},{promulgation_date:%Y/%m/%d},{uuid.uuid4()}"
    )
    paper = reader.flag("paper")
    digitized = reader.flag("digitized")
    business_type = reader.choice("business_type", edxml.BusinessDocType, edxml.BusinessDocType.NEW)
    for item in files:
        if not item.data:  # a scan that failed, a copy cut short: never what a clerk meant to send
            raise IntakeError(f"the attachment {item.name!r} is empty (0 bytes)", where=where)
    attachments = tuple(
        edxml.Attachment(
            content_id=f"att-{index}",
            attachment_name=item.name,
            data=item.data,
            content_type=item.content_type or mimetypes.guess_type(item.name)[0] or "application/octet-stream",
            description=item.description,
        )
        for index, item in enumerate(files, start=1)
    )
    signer = reader.table("signer")
    document = edxml.Document(
        sender=sender,
        to=recipients,
        subject=reader.required("subject"),
        document_id=document_id,
        code=edxml.Code(code_number, code_notation),
        promulgation_info=edxml.PromulgationInfo(reader.text("promulgation_place"), promulgation_date),
        document_type=reader.document_type(),
        content=reader.text("content"),
        signer_info=None
        if signer is None
        else edxml.SignerInfo(
            _Job(signer, f"{where}: signer").text("competence"),
            _Job(signer, f"{where}: signer").text("position"),
            _Job(signer, f"{where}: signer").text("full_name"),
        ),
        due_date=reader.date("due_date"),
        other_info=edxml.OtherInfo(
            priority=reader.choice("priority", edxml.Priority, edxml.Priority.NORMAL),
            sphere_of_promulgation=reader.text("sphere_of_promulgation"),
            typer_notation=reader.text("typer_notation"),
            promulgation_amount=reader.integer("promulgation_amount"),
            page_amount=reader.integer("page_amount"),
            direction=False,
        ),
        steering_type=reader.choice("steering_type", edxml.SteeringType, None),
        application_type=DIGITIZED_MARK if digitized else None,
        to_places=tuple(reader.strings("to_places")) or None,
        trace_headers=(edxml.TraceHeader(sender.organ_id, edxml.now_vietnam()),),
        business=edxml.Business(
            business_doc_type=business_type,
            document_id=reader.text("business_document_id"),
            business_doc_reason=reader.text("business_reason") or business_type.meaning,
            paper=paper,
        ),
        attachments=attachments,
    )
    return Composed(document, paper, digitized)


def is_digitized(document: edxml.Document) -> bool:
    return document.application_type == DIGITIZED_MARK


def document_time(document: edxml.Document, *, signed_hops: int, default: datetime) -> str:
    """The document's own time for reports: its sender's first signed hop, else its promulgation date, else ``default``.

    Only the first ``signed_hops`` TraceHeaders count (the signature verdict says how many):
    a hop appended after the signature could carry any time, and the quarterly report
    counts by this one. Vietnam wall-clock time, ISO form ("2023-07-01T00:00:00"), as edXML
    writes no zone.
    """
    for hop in document.trace_headers[:signed_hops]:
        if hop.organ_id == document.sender.organ_id and hop.timestamp is not None:
            return hop.timestamp.isoformat()
    info = document.promulgation_info
    if info is not None and info.promulgation_date is not None:
        return datetime.combine(info.promulgation_date, datetime.min.time()).isoformat()
    return default.replace(microsecond=0).isoformat()


# 03 đã tiếp nhận → 04 phân công → 05 đang xử lý → 06 hoàn thành: a document's handling only moves on.
_STEPS = (
    edxml.StatusCode.ACCEPTED,
    edxml.StatusCode.ASSIGNED,
    edxml.StatusCode.PROCESSING,
    edxml.StatusCode.FINISHED,
)


# the answers to a request to recall or change a document (15, 16), once each per request
CHANGE_ANSWERS = (edxml.StatusCode.CHANGE_ACCEPTED, edxml.StatusCode.CHANGE_REFUSED)


def answer_refusal(
    code: edxml.StatusCode, earlier: Iterable[edxml.StatusCode], description: str | None, *, requests: int = 0
) -> str | None:
    """Why status ``code`` cannot follow the ``earlier`` answers to one document; None if it can.

    02 says why (the sender must be able to act on it) and comes before any step; the steps
    03–06 go forward (05 may repeat, as progress notes); nothing of 03–06 follows a refusal
    or 06. 15/16 answer a request to recall or change the document (``requests``: the recalls
    (13) received, and the document itself when it updates or replaces another), once each.
    """
    answered = [c for c in earlier if c in CHANGE_ANSWERS]
    earlier = set(earlier)
    if code in CHANGE_ANSWERS:
        if not requests:
            return "no recall (13) was received for this document, and it updates or replaces none"
        if len(answered) >= requests:
            return f"the request was already answered ({answered[-1].wire})"
        return None
    if code is edxml.StatusCode.REFUSED:
        if not (description or "").strip():
            return "a refusal (02) must say why: give --description"
        taken = [step for step in _STEPS if step in earlier]
        if taken:
            return f"the document was already answered {taken[-1].wire}; a refusal (02) comes before 03"
        return None
    if code not in _STEPS:
        return None
    if edxml.StatusCode.REFUSED in earlier:
        return "the document was refused (02); no step of its handling follows a refusal"
    done = [step for step in _STEPS if step in earlier]
    if done:
        last = done[-1]
        if _STEPS.index(code) < _STEPS.index(last) or (code is last and code is not edxml.StatusCode.PROCESSING):
            return f"{last.wire} was already sent; the steps go 03, 04, 05, 06 and do not go back"
    return None


def answered(document: edxml.Document, *, fallback_document_id: str | None = None) -> edxml.ResponseFor:
    """What a status message about ``document`` names of it (its ResponseFor)."""
    return edxml.ResponseFor(
        organ_id=document.sender.organ_id,
        code=str(document.code) if document.code else None,
        promulgation_date=document.promulgation_info.promulgation_date if document.promulgation_info else None,
        document_id=document.document_id or fallback_document_id,
    )


def changes_another(document: edxml.Document) -> bool:
    """Whether ``document`` updates or replaces an earlier one (which a 15 or 16 may answer)."""
    changes = (edxml.BusinessDocType.UPDATE, edxml.BusinessDocType.REPLACE)
    return document.business is not None and document.business.business_doc_type in changes


def answering_record(document: edxml.Document, *, fallback_document_id: str) -> str:
    """What answering a received document needs of it, kept in its record when it is delivered:
    an answer is then composed without reading and parsing the envelope again."""
    response_for = answered(document, fallback_document_id=fallback_document_id)
    assert response_for.organ_id is not None
    return json.dumps(
        {
            "organ_id": response_for.organ_id.text,
            "code": response_for.code,
            "promulgation_date": response_for.promulgation_date.isoformat() if response_for.promulgation_date else None,
            "document_id": response_for.document_id,
            "changes": changes_another(document),
        },
        ensure_ascii=False,
    )


def read_answering_record(text: str) -> tuple[edxml.ResponseFor, bool]:
    """:func:`answering_record` read back: the ResponseFor, and whether the document changes another."""
    data = json.loads(text)
    promulgated = data.get("promulgation_date")
    response_for = edxml.ResponseFor(
        organ_id=edxml.AgencyCode(data["organ_id"]),  # always written
        code=data.get("code"),
        promulgation_date=date.fromisoformat(promulgated) if promulgated else None,
        document_id=data.get("document_id"),
    )
    return response_for, bool(data.get("changes"))


def status_for(
    answered: edxml.ResponseFor,
    *,
    sender: edxml.Organization,
    code: edxml.StatusCode,
    description: str | None = None,
    staff: str | None = None,
) -> edxml.StatusMessage:
    """Our status message about a document we received (01-06, 15, 16, and 02 with the reason)."""
    return edxml.StatusMessage(
        sender=sender,
        response_for=answered,
        status_code=code,
        staff_info=edxml.StaffInfo(staff=staff) if staff else None,
        description=description or code.meaning,
        timestamp=edxml.now_vietnam(),
    )


def refusal(
    document: edxml.Document | None, *, sender: edxml.Organization, listed_from: str, axis_doc_id: str, reason: str
) -> edxml.StatusMessage:
    """Status 02 for a message we refuse, always to the sender the axis named (the one it
    authenticated): about the document as its file names it when the file names that sender;
    else about the axis's docId. A file claiming another agency's From (and its DocumentId)
    must not get that agency told that one of its real documents was refused."""
    if document is not None and document.sender.organ_id.text == listed_from:
        return status_for(
            answered(document, fallback_document_id=axis_doc_id),
            sender=sender,
            code=edxml.StatusCode.REFUSED,
            description=reason,
        )
    return edxml.StatusMessage(
        sender=sender,
        response_for=edxml.ResponseFor(organ_id=edxml.AgencyCode.lenient(listed_from), document_id=axis_doc_id),
        status_code=edxml.StatusCode.REFUSED,
        description=reason,
        timestamp=edxml.now_vietnam(),
    )


def recall_requests(sent: edxml.Document, *, sender: edxml.Organization, reason: str) -> list[edxml.StatusMessage]:
    """Status 13 to each recipient of a document we sent: the axis routes by ResponseFor/OrganId."""
    return [
        edxml.StatusMessage(
            sender=sender,
            response_for=edxml.ResponseFor(
                organ_id=recipient.organ_id,
                code=str(sent.code) if sent.code else None,
                promulgation_date=sent.promulgation_info.promulgation_date if sent.promulgation_info else None,
                document_id=sent.document_id,
            ),
            status_code=edxml.StatusCode.RECALL_REQUESTED,
            description=reason,
            timestamp=edxml.now_vietnam(),
        )
        for recipient in sent.to
    ]


class _Job:
    """Typed reads of document.json with errors naming the key."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        if not isinstance(data, Mapping):
            raise IntakeError("must be a JSON object", where=where)
        self.data = data
        self.where = where

    def _fail(self, key: str, message: str) -> IntakeError:
        return IntakeError(message, where=f"{self.where}: {key}")

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self._fail(key, f"must be text, got {value!r}")
        return value.strip() or None

    def required(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise self._fail(key, "is required")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._fail(key, f"must be a whole number, got {value!r}")
        return value

    def date(self, key: str) -> date | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return edxml.parse_date(value)
        except ValueError:
            raise self._fail(key, f"{value!r} is not a date (yyyy/MM/dd or yyyy-MM-dd)") from None

    def choice(self, key: str, enum: Any, default: Any) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return enum.from_wire(str(value))
        except ValueError as exc:
            raise self._fail(key, str(exc)) from None

    def table(self, key: str) -> Mapping[str, Any] | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self._fail(key, "must be a JSON object")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of text")
        return [v.strip() for v in value if v.strip()]

    def document_type(self) -> edxml.DocumentType:
        value = self.data.get("document_type", "Công văn")
        if isinstance(value, str):
            return edxml.DocumentType(type=1, type_detail=0, type_name=value)
        kind = _Job(self.table("document_type") or {}, f"{self.where}: document_type")
        return edxml.DocumentType(
            type=kind.integer("type") or 1,
            type_detail=kind.integer("type_detail") or 0,
            type_name=kind.text("type_name"),
        )

    def recipients(self, names: Mapping[str, str]) -> tuple[edxml.Organization, ...]:
        value = self.data.get("to")
        if not isinstance(value, list) or not value:
            raise self._fail("to", "must list at least one recipient agency code")
        organizations: list[edxml.Organization] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            name = None
            if isinstance(item, Mapping):
                code, name = item.get("code"), item.get("name")
            else:
                code = item
            if not isinstance(code, str):
                raise self._fail(f"to[{index}]", f"must be an agency code, got {code!r}")
            try:  # the strict form: the only one our documents carry (schemas/README.md)
                agency = edxml.AgencyCode.strict(code)
            except AgencyCodeError as exc:
                raise self._fail(f"to[{index}]", exc.message) from None
            if agency.text in seen:
                raise self._fail(f"to[{index}]", f"{agency} is named twice")
            if names and agency.text not in names:  # the axis would refuse it (ErrorCode 18), after intake
                raise RecipientNotInDirectory(
                    f"{agency} is not in the axis directory ({len(names)} agencies); check the code",
                    where=f"{self.where}: to[{index}]",
                )
            seen.add(agency.text)
            organizations.append(edxml.Organization(agency, organ_name=name or names.get(agency.text) or agency.text))
        return tuple(organizations)


def safe_job_name(name: str) -> str:
    """A drop-folder entry's name as it may appear in logs and error files."""
    return re.sub(r"[^\w.\-]+", "_", name)[:100]
