"""The edXML format layer (QCVN 102:2016 as public SDKs and samples use it), sans-IO.

Everything here takes and returns bytes and values: no files, sockets or global state
(compiled XML Schemas are cached; they are immutable). Typical use::

    from gateway import edxml

    data = edxml.build(document)                       # strict VNPT layout, unsigned
    signed = edxml.sign(data, identity)                # XMLDSig, relay-safe
    checked = edxml.validate(signed, trust=trust)      # schema + structure + signature
    checked.message.subject
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.edxml.agency import AgencyCode
from gateway.edxml.build import build, build_lifted, build_tree, serialize
from gateway.edxml.business import (
    concerned_documents,
    foreign_reference,
    reference_refusal,
    sender_named_in,
    spellings,
)
from gateway.edxml.certs import (
    AGENCY_CODE_OID,
    PrivateKey,
    SigningIdentity,
    TrustStore,
    agency_of,
    check_own_identity,
    check_signing_certificate,
)
from gateway.edxml.codes import BusinessDocType, Priority, ReceiverType, StatusCode, SteeringType
from gateway.edxml.lift import NOT_LIFTED, Expansion, Lifted
from gateway.edxml.model import (
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    Document,
    DocumentType,
    ManifestReference,
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
    routed_to,
)
from gateway.edxml.names import safe_file_name
from gateway.edxml.parse import message_from_tree
from gateway.edxml.relay import append_trace_header
from gateway.edxml.schema import MessageKind, SchemaMode, validate_tree
from gateway.edxml.signature import SignatureState, SignatureVerdict, content_digest, sign_tree, verify_tree
from gateway.edxml.text import VIETNAM, now_vietnam, parse_date, parse_timestamp, vietnam_iso
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, Limits, parse_lifted, parse_xml
from gateway.errors import SignatureMissing


@dataclass(frozen=True)
class Validation:
    """A message that passed schema and structure checks, with its signature verdict."""

    message: Message
    kind: MessageKind
    signature: SignatureVerdict


def read(data: bytes, *, mode: SchemaMode = SchemaMode.LENIENT, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse and schema-check edXML bytes into a Document or StatusMessage (signature not checked)."""
    root, lifted = parse_lifted(data, limits)
    validate_tree(root, mode)
    return message_from_tree(root, limits, lifted)


def validate(
    data: bytes,
    *,
    trust: TrustStore | None,
    mode: SchemaMode = SchemaMode.LENIENT,
    limits: Limits = DEFAULT_LIMITS,
    require_signature: bool = True,
    at: datetime | None = None,
    allow_sha1: bool = False,
) -> Validation:
    """Everything a receiver checks: safe parse, schema, structure, then the signature.

    Raises a FormatError or SignatureError (each with a stable code) when the message is
    not acceptable; SignatureMissing when it is unsigned and ``require_signature`` is set.
    """
    root, lifted = parse_lifted(data, limits)
    return validate_root(
        root,
        lifted=lifted,
        trust=trust,
        mode=mode,
        limits=limits,
        require_signature=require_signature,
        at=at,
        allow_sha1=allow_sha1,
    )


def validate_root(
    root: etree._Element,
    *,
    trust: TrustStore | None,
    mode: SchemaMode = SchemaMode.LENIENT,
    limits: Limits = DEFAULT_LIMITS,
    require_signature: bool = True,
    check_signature: bool = True,
    at: datetime | None = None,
    allow_sha1: bool = False,
    lifted: Lifted = NOT_LIFTED,
) -> Validation:
    """:func:`validate` for a tree already parsed by :func:`parse_lifted` (a relay goes on to use it).

    ``check_signature=False`` (a relay that does not verify) leaves the signature alone;
    ``lifted`` is what parse_lifted cut out of the tree.
    """
    kind = validate_tree(root, mode)
    message = message_from_tree(root, limits, lifted)
    if not check_signature:
        return Validation(message, kind, SignatureVerdict(SignatureState.NOT_CHECKED, "signature not checked"))
    verdict = verify_tree(root, trust, at=at, allow_sha1=allow_sha1, lifted=lifted)
    if require_signature and not verdict.valid:
        raise SignatureMissing(verdict.detail)
    return Validation(message=message, kind=kind, signature=verdict)


def read_unchecked(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Safe parse and structure only, no schema and no signature: what a refused message still
    says (whom to answer), or a file this gateway wrote or checked before."""
    root, lifted = parse_lifted(data, limits)
    return message_from_tree(root, limits, lifted)


def sign_outgoing(
    root: etree._Element, identity: SigningIdentity, *, mode: SchemaMode, lifted: Lifted = NOT_LIFTED
) -> Expansion:
    """The one way a message is signed, by the gateway and the `sign` command alike: checked
    against the schema in ``mode``, signed in place, and serialised in pieces (a lifted
    attachment's base64 is never whole in memory)."""
    validate_tree(root, mode)
    sign_tree(root, identity, lifted)
    return Expansion(lifted, serialize(root))


def sign(data: bytes, identity: SigningIdentity, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Sign edXML bytes (any layout the lenient reader accepts) and return the signed bytes."""
    root, lifted = parse_lifted(data, limits)
    message_from_tree(root, limits, lifted)  # refuse to sign what we would refuse to read
    return b"".join(sign_outgoing(root, identity, mode=SchemaMode.LENIENT, lifted=lifted))


def sign_message(message: Message, identity: SigningIdentity, *, mode: SchemaMode = SchemaMode.LENIENT) -> bytes:
    """Build and sign in one step (the gateway signs its own documents with ``mode`` STRICT)."""
    root, lifted = build_lifted(message)
    return b"".join(sign_outgoing(root, identity, mode=mode, lifted=lifted))


def verify(
    data: bytes | etree._Element,
    trust: TrustStore | None,
    *,
    at: datetime | None = None,
    allow_sha1: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> SignatureVerdict:
    root, lifted = (data, NOT_LIFTED) if isinstance(data, etree._Element) else parse_lifted(data, limits)
    message_from_tree(root, limits, lifted)
    return verify_tree(root, trust, at=at, allow_sha1=allow_sha1, lifted=lifted)


__all__ = [
    "AGENCY_CODE_OID",
    "DEFAULT_LIMITS",
    "VIETNAM",
    "AgencyCode",
    "Attachment",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "Code",
    "Document",
    "DocumentType",
    "Expansion",
    "Lifted",
    "Limits",
    "ManifestReference",
    "Message",
    "MessageKind",
    "Organization",
    "OtherInfo",
    "Priority",
    "PrivateKey",
    "PromulgationInfo",
    "Receiver",
    "ReceiverType",
    "ReplacementInfo",
    "ResponseFor",
    "SchemaMode",
    "SignatureState",
    "SignatureVerdict",
    "SignerInfo",
    "SigningIdentity",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "SteeringType",
    "TraceHeader",
    "TrustStore",
    "Validation",
    "agency_of",
    "append_trace_header",
    "build",
    "build_lifted",
    "build_tree",
    "check_own_identity",
    "check_signing_certificate",
    "concerned_documents",
    "content_digest",
    "foreign_reference",
    "message_from_tree",
    "now_vietnam",
    "parse_date",
    "parse_lifted",
    "parse_timestamp",
    "parse_xml",
    "read",
    "read_unchecked",
    "reference_refusal",
    "routed_to",
    "safe_file_name",
    "sender_named_in",
    "serialize",
    "sign",
    "sign_message",
    "sign_outgoing",
    "spellings",
    "validate",
    "validate_root",
    "verify",
    "vietnam_iso",
]
