"""Which earlier documents a revoke, update or replace concerns, and whose they are.

A document with BussinessDocType 1-3 (thu hồi, cập nhật, thay thế) acts on a document sent
before: the one its ``Bussiness/DocumentId`` names, and for a replacement each
``ReplacementInfo/DocumentId``. Only the agency that sent a document may revoke, update or
replace it, so each of those must be the sender's own. A DocumentId written the VPCP way,
``<sender OrganId>,<yyyy/MM/dd>,<number>`` (every SDK that builds one, and this gateway),
says whose it is; an opaque one (a UUID) does not, and the receiver's records must tell.
"""

from __future__ import annotations

import uuid

from gateway.edxml.agency import AgencyCode
from gateway.edxml.codes import BusinessDocType
from gateway.edxml.model import Document
from gateway.errors import AgencyCodeError


def concerned_documents(document: Document) -> tuple[str, ...]:
    """The DocumentIds a revoke, update or replace acts on (none for a new document)."""
    business = document.business
    if business is None or business.business_doc_type is BusinessDocType.NEW:
        return ()
    ids = [business.document_id] + [r.document_id for r in business.replacements or ()]
    return tuple(dict.fromkeys(i.strip() for i in ids if i and i.strip()))


def sender_named_in(document_id: str) -> str | None:
    """The sender's code a DocumentId written the VPCP way starts with, else None."""
    head, comma, _ = document_id.partition(",")
    if not comma:
        return None
    try:
        return AgencyCode.lenient(head.strip()).text
    except AgencyCodeError:
        return None


def spellings(document_id: str) -> tuple[str, ...]:
    """The ways one opaque DocumentId may be written: a UUID in upper or lower case, in braces
    or as a URN is one document to the systems that compare them (most do); other ids as given."""
    try:
        value = uuid.UUID(document_id.strip())
    except ValueError:
        return (document_id,)
    lower = str(value)
    forms = (lower, lower.upper(), f"{{{lower}}}", f"{{{lower.upper()}}}", f"urn:uuid:{lower}", value.hex)
    return tuple(dict.fromkeys((document_id, *forms)))


def foreign_reference(document: Document) -> str | None:
    """Why this revoke, update or replace may not be accepted, when a DocumentId it acts on
    names another sender; None when none does (or none says whose it is)."""
    sender = document.sender.organ_id.text
    for document_id in concerned_documents(document):
        owner = sender_named_in(document_id)
        if owner is not None and owner != sender:
            return reference_refusal(document, document_id, owner)
    return None


def reference_refusal(document: Document, document_id: str, owner: str) -> str:
    """The reason given (with status 02) when ``document_id``, acted on by ``document``, is ``owner``'s."""
    kind = document.business.business_doc_type if document.business else BusinessDocType.NEW
    return (
        f"BussinessDocType {kind.wire} ({kind.meaning}) from {document.sender.organ_id} concerns"
        f" {document_id!r}, a document of {owner}: only its sender may revoke, update or replace it"
    )
