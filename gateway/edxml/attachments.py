"""The manifest and the attachments of a document: matched by ContentId, decoded with
care (the base64 of a scan can be 150 MB, and lifted out of the tree)."""

from __future__ import annotations

import binascii
from dataclasses import replace

import pybase64
from lxml import etree

from gateway.edxml import ns
from gateway.edxml.lift import NOT_LIFTED, Lifted
from gateway.edxml.model import Attachment, Document, ManifestReference
from gateway.edxml.reading import Children, Envelope, strip_cid, text_only, where
from gateway.edxml.xmlsafe import Limits
from gateway.errors import AttachmentError, StructureError

_BASE64_BLANKS = b" \t\r\n"


def _attachments(
    frame: Envelope, limits: Limits, lifted: Lifted
) -> tuple[tuple[ManifestReference, ...], tuple[Attachment, ...]]:
    manifest: list[tuple[ManifestReference, etree._Element]] = []
    if frame.body is not None:
        body = Children(frame.body, frozenset({"edXMLManifest"}))
        manifest_el = body.opt("edXMLManifest")
        if manifest_el is not None:
            refs = Children(manifest_el, frozenset({"Reference"})).many("Reference")
            manifest = [(_manifest_reference(r), r) for r in refs]
    attachments: list[tuple[Attachment, etree._Element]] = []
    if frame.attachment_encoded is not None:
        items = Children(frame.attachment_encoded, frozenset({"Attachment"})).many("Attachment")
        if len(items) > limits.max_attachments:
            raise AttachmentError(
                f"{len(items)} attachments, the limit is {limits.max_attachments}", where=where(items[0])
            )
        attachments = [(_attachment(a, limits, lifted), a) for a in items]

    _unique([(r.content_id, el) for r, el in manifest], "edXML:Reference")
    _unique([(a.content_id, el) for a, el in attachments], "Attachment")
    announced = {r.content_id for r, _ in manifest}
    carried = {a.content_id for a, _ in attachments}
    for reference, el in manifest:
        if reference.content_id not in carried:
            raise AttachmentError(
                f"the manifest announces ContentId {reference.content_id!r} but no attachment carries it",
                where=where(el),
            )
    for attachment, el in attachments:
        if attachment.content_id not in announced:
            raise AttachmentError(
                f"attachment {attachment.content_id!r} is not announced in the manifest", where=where(el)
            )
    return tuple(r for r, _ in manifest), tuple(a for a, _ in attachments)


def _derived_or_none(document: Document) -> Document:
    """Forget the manifest when it says only what the attachments say: build derives it again."""
    derived = replace(document, manifest=None).manifest_references()
    return replace(document, manifest=None) if derived == document.manifest else document


def _unique(items: list[tuple[str, etree._Element]], what: str) -> None:
    seen: set[str] = set()
    for content_id, el in items:
        if content_id in seen:
            raise AttachmentError(f"two {what} elements share ContentId {content_id!r}", where=where(el))
        seen.add(content_id)


def _content_id(c: Children, el: etree._Element) -> str:
    raw = c.text("ContentId")
    if not raw:
        # .NET output also points at the attachment with xlink:href="cid:…"
        raw = el.get(f"{{{ns.XLINK}}}href") or ""
    content_id = strip_cid(raw)
    if not content_id:
        raise AttachmentError("ContentId is missing or empty", where=where(el))
    return content_id


def _manifest_reference(el: etree._Element) -> ManifestReference:
    c = Children(el, frozenset({"ContentId", "ContentType", "Description", "AttachmentName"}))
    return ManifestReference(
        content_id=_content_id(c, el),
        content_type=c.text("ContentType"),
        description=c.text("Description"),
        attachment_name=c.text("AttachmentName"),
    )


def _attachment(el: etree._Element, limits: Limits, lifted: Lifted) -> Attachment:
    c = Children(
        el,
        frozenset(
            {
                "ContentId",
                "AttachmentName",
                "Description",
                "FieldName",
                "MimeType",
                "ContentType",
                "ContentTransferEncoded",
            }
        ),
    )
    payload_el = c.one("ContentTransferEncoded")
    name = c.text("AttachmentName")
    if not name:
        raise AttachmentError("attachment has no AttachmentName", where=where(el))
    return Attachment(
        content_id=_content_id(c, el),
        attachment_name=name,
        data=decode_base64(payload_el, limits, lifted),
        content_type=c.text("ContentType"),
        description=c.text("Description"),
        field_name=c.text("FieldName"),
        mime_type=c.text("MimeType"),
    )


def decode_base64(el: etree._Element, limits: Limits, lifted: Lifted = NOT_LIFTED) -> bytes:
    """Strict base64: the standard alphabet with padding; line breaks and blanks are allowed."""
    try:
        text_only(el)
    except StructureError as exc:
        raise AttachmentError(exc.message, where=exc.where) from None
    run = lifted.run_of(el)
    if run is not None and run.decoded is not None:
        data = run.decoded  # lifting it decoded it already (that was its check)
    else:
        # a lifted run is decoded from the message's own bytes, never copied into the tree
        text = run.whole() if run is not None else (el.text or "")
        if len(text) // 4 * 3 > limits.max_attachment_bytes + 3:
            raise AttachmentError(
                f"attachment larger than the limit of {limits.max_attachment_bytes} bytes", where=where(el)
            )
        try:
            # The usual case, one unbroken run of base64, decoded in one SIMD pass (about 15 ms for a
            # 20 MB scan against 170 ms the careful way below, which also names what is wrong).
            data = pybase64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            data = _decode_base64_carefully(el, text)
    if len(data) > limits.max_attachment_bytes:
        raise AttachmentError(
            f"attachment is {len(data)} bytes, the limit is {limits.max_attachment_bytes}", where=where(el)
        )
    return data


def _decode_base64_carefully(el: etree._Element, text: str | bytes | memoryview) -> bytes:
    """Base64 broken into lines, or not base64 at all: decoded, or refused with the reason."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except UnicodeEncodeError:
        raise AttachmentError("attachment content is not base64 (non-ASCII text)", where=where(el)) from None
    # translate() and a2b_base64 run in C: a regex over 27 MB of base64 cost ten times more
    compact = raw.translate(None, _BASE64_BLANKS)
    if len(compact) % 4:
        raise AttachmentError(
            f"attachment content is not valid base64: {len(compact)} characters, not a multiple of 4", where=where(el)
        )
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise AttachmentError(f"attachment content is not valid base64: {exc}", where=where(el)) from None
