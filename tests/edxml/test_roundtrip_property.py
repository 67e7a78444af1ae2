"""Property: for every model value, parse(build(x)) == x, and build is stable."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from gateway import edxml
from gateway.edxml import (
    AgencyCode,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    Document,
    DocumentType,
    ManifestReference,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    SteeringType,
    TraceHeader,
)

xml_chars = st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn"), blacklist_characters="\ufffe\uffff")
text = st.text(xml_chars, max_size=25).map(lambda s: unicodedata.normalize("NFC", s).strip())
maybe_text = st.none() | text
non_empty = text.filter(bool)
codes = st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True).map(
    AgencyCode.strict
) | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True).map(AgencyCode.lenient)
dates = st.dates(min_value=__import__("datetime").date(1900, 1, 1), max_value=__import__("datetime").date(2100, 12, 31))
timestamps = st.datetimes(
    min_value=__import__("datetime").datetime(1900, 1, 1), max_value=__import__("datetime").datetime(2100, 12, 31)
).map(lambda d: d.replace(microsecond=0))
small_ints = st.integers(min_value=-(10**9), max_value=10**9)
amounts = st.integers(min_value=0, max_value=10**6)


def optional(strategy):
    return st.none() | strategy


def tuples(strategy, max_size=3):
    return st.lists(strategy, max_size=max_size).map(tuple)


organizations = st.builds(
    Organization,
    organ_id=codes,
    organization_in_charge=maybe_text,
    organ_name=maybe_text,
    organ_add=maybe_text,
    email=maybe_text,
    telephone=maybe_text,
    fax=maybe_text,
    website=maybe_text,
)
response_fors = st.builds(
    ResponseFor, organ_id=optional(codes), code=maybe_text, promulgation_date=optional(dates), document_id=maybe_text
)
staff = st.builds(
    StaffInfo,
    department=maybe_text,
    department_id=maybe_text,
    staff=maybe_text,
    staff_id=maybe_text,
    email=maybe_text,
    mobile=maybe_text,
)
traces = st.builds(TraceHeader, organ_id=optional(codes), timestamp=optional(timestamps))
business = st.builds(
    Business,
    business_doc_type=st.sampled_from(BusinessDocType),
    document_id=maybe_text,
    business_doc_reason=maybe_text,
    paper=optional(st.booleans()),
    document_infos=tuples(
        st.builds(
            BusinessDocumentInfo,
            document_info=optional(small_ints),
            document_receiver=optional(small_ints),
            receivers=optional(
                tuples(st.builds(Receiver, organ_id=codes, receiver_type=st.sampled_from(ReceiverType)))
            ),
        ),
        max_size=2,
    ),
    replacements=optional(tuples(st.builds(ReplacementInfo, document_id=maybe_text, organ_ids=tuples(codes)))),
    staff=tuples(staff, max_size=2),
)
other_info = st.builds(
    OtherInfo,
    priority=optional(st.sampled_from(Priority)),
    sphere_of_promulgation=maybe_text,
    typer_notation=maybe_text,
    promulgation_amount=optional(amounts),
    page_amount=optional(amounts),
    reply_fors=maybe_text,
    direction=optional(st.booleans()),
    reference_codes=maybe_text,
    appendixes=optional(tuples(text)),
)
content_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,15}", fullmatch=True)


@st.composite
def attachments_and_manifest(draw):
    ids = draw(st.lists(content_ids, max_size=3, unique=True))
    attachments = tuple(
        Attachment(
            content_id=content_id,
            attachment_name=draw(non_empty),
            data=draw(st.binary(max_size=64)),
            content_type=draw(maybe_text),
            description=draw(maybe_text),
            field_name=draw(maybe_text),
            mime_type=draw(maybe_text),
        )
        for content_id in ids
    )
    manifest = None
    if ids and draw(st.booleans()):
        order = draw(st.permutations(ids))
        manifest = tuple(
            ManifestReference(content_id, draw(maybe_text), draw(maybe_text), draw(maybe_text)) for content_id in order
        )
        derived = tuple(
            ManifestReference(a.content_id, a.content_type, a.description, a.attachment_name) for a in attachments
        )
        if manifest == derived:
            manifest = None
    return attachments, manifest


@st.composite
def documents(draw):
    attachments, manifest = draw(attachments_and_manifest())
    recipients = draw(st.lists(organizations, min_size=1, max_size=3, unique_by=lambda o: o.organ_id))
    return Document(
        sender=draw(organizations),
        to=tuple(recipients),
        subject=draw(non_empty),
        document_id=draw(maybe_text),
        code=draw(optional(st.builds(Code, code_number=maybe_text, code_notation=maybe_text))),
        promulgation_info=draw(
            optional(st.builds(PromulgationInfo, place=maybe_text, promulgation_date=optional(dates)))
        ),
        document_type=draw(
            optional(
                st.builds(
                    DocumentType, type=optional(small_ints), type_detail=optional(small_ints), type_name=maybe_text
                )
            )
        ),
        content=draw(maybe_text),
        signer_info=draw(
            optional(st.builds(SignerInfo, competence=maybe_text, position=maybe_text, full_name=maybe_text))
        ),
        due_date=draw(optional(dates)),
        other_info=draw(optional(other_info)),
        response_for=draw(tuples(response_fors, max_size=2)),
        steering_type=draw(optional(st.sampled_from(SteeringType))),
        response_for_task=draw(optional(tuples(text))),
        application_type=draw(maybe_text),
        to_places=draw(optional(tuples(text))),
        trace_headers=draw(tuples(traces)),
        business=draw(optional(business)),
        attachments=attachments,
        manifest=manifest,
    )


statuses = st.builds(
    StatusMessage,
    sender=organizations,
    response_for=response_fors,
    status_code=st.sampled_from(StatusCode),
    staff_info=optional(staff),
    description=maybe_text,
    timestamp=optional(timestamps),
    trace_headers=tuples(traces, max_size=2),
)


@given(documents())
def test_documents_round_trip(document):
    data = edxml.build(document)
    parsed = edxml.read(data)
    assert parsed == document
    assert edxml.build(parsed) == data


@given(statuses)
def test_status_messages_round_trip(status):
    data = edxml.build(status)
    assert edxml.read(data) == status


@given(st.text(max_size=300))
def test_safe_file_names_never_escape_their_folder(name):
    safe = edxml.safe_file_name(name)
    assert safe and safe not in (".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not any(unicodedata.category(ch) == "Cc" for ch in safe)
    assert len(safe.encode()) <= 200
    assert safe.split(".")[0].rstrip(" ").upper() not in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1", "COM¹"}
