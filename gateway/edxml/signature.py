"""XMLDSig signatures on edXML messages (signxml), built so that relays can append hops.

What is signed: a detached signature, placed in edXMLHeader after TraceHeaderList (after
MessageHeader in a status message), with one Reference per part, each by Id and
exclusive c14n: MessageHeader, Bussiness, every TraceHeader present at signing time,
edXMLBody (the manifest) and AttachmentEncoded. A relay appending a TraceHeader touches
none of them; changing any other byte of the header, the manifest or an attachment
breaks a digest. Exclusive c14n keeps SignedInfo valid when the Signature element is
moved into the document after signing.

What verification proves, in order: the signature is real XMLDSig (placeholders are
reported as *unsigned*, not invalid); the algorithms and transforms are allowed (SHA-1
only with the legacy switch; transforms as gateway.edxml.signedinfo says), with no more
References than the message has parts; one offered certificate's key made the signature
value, whatever order KeyInfo lists them in; that certificate chains to the trust store,
was valid at the given time, may sign, and names the sender's agency code; every digest
matches; every part listed above is covered by exactly the element found at its proper
place, so that a second MessageHeader, a moved Signature or a Reference that points
elsewhere cannot pass (signature wrapping).

A whole-document signature (``URI=""``, enveloped: the government's template) is checked
as the signer signed it: the TraceHeaders relays appended after it are left out, and
reported as unsigned relay hops. Any other change still breaks it.

The certificate is checked before any digest is computed, at the time the caller gives
(the receiving gateway: when its axis accepted the message) or now; never at a time
written in the message.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.edxml import dsig, ns
from gateway.edxml.certs import (
    MAX_OFFERED,
    SigningIdentity,
    TrustStore,
    check_key,
    check_signer,
    describe,
)
from gateway.edxml.lift import NOT_LIFTED, Lifted
from gateway.edxml.reading import Envelope, local_name, read_text
from gateway.edxml.signedinfo import Plan, read_plan
from gateway.errors import (
    SignatureCoverage,
    SignatureError,
    SignerMismatch,
    StructureError,
    UntrustedCertificate,
    WeakAlgorithm,
)

ID_ATTRIBUTE = "Id"
C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_SHA1_URIS = frozenset({m.value for m in SignatureMethod if "SHA1" in m.name} | {DigestAlgorithm.SHA1.value})
_STRONG_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA512,
    }
)
_STRONG_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})


class SignatureState(enum.Enum):
    VALID = "valid"
    UNSIGNED = "unsigned"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class SignatureVerdict:
    """The outcome of a verification that did not fail: valid, or no real signature at all."""

    state: SignatureState
    detail: str
    signer: str | None = None
    certificate: x509.Certificate | None = None
    algorithm: str | None = None
    # TraceHeaders the signature covers (the first ones) and those relays appended after it
    signed_hops: int = 0
    relay_hops: int = 0
    checked_at: datetime | None = None  # when the certificate was judged valid
    # the path from the signer's certificate to its trust anchor, for revocation to be judged along
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def valid(self) -> bool:
        return self.state is SignatureState.VALID


# --- which parts are signed ----------------------------------------------------------------------


# the parts besides the hops a signature covers: MessageHeader, Bussiness, edXMLBody, AttachmentEncoded
_PART_NAMES = ("MessageHeader", "Bussiness", "edXMLBody", "AttachmentEncoded")


def _signed_parts(frame: Envelope) -> list[tuple[str, etree._Element]]:
    """(Id, element) for every part a signature must cover, in document order."""
    parts: list[tuple[str, etree._Element]] = [("edxml-MessageHeader", frame.message_header)]
    if frame.trace_header_list is not None:
        hop = 0
        for child in frame.trace_header_list:
            if not isinstance(child.tag, str):
                continue
            if child.tag == ns.q("Bussiness"):
                parts.append(("edxml-Bussiness", child))
            elif child.tag == ns.q("TraceHeader"):
                hop += 1
                parts.append((f"edxml-TraceHeader-{hop}", child))
    if frame.body is not None:
        parts.append(("edxml-edXMLBody", frame.body))
    if frame.attachment_encoded is not None:
        parts.append(("edxml-AttachmentEncoded", frame.attachment_encoded))
    return parts


# --- signing ---------------------------------------------------------------------------------------


def sign_tree(root: etree._Element, identity: SigningIdentity, lifted: Lifted = NOT_LIFTED) -> None:
    """Sign the edXML tree in place, replacing any signature or placeholder it carries.

    Refuses to sign a message whose From is not the agency the certificate names. A tree
    with lifted runs is signed as the message it stands for, runs included.
    """
    frame = Envelope(root)
    sender = _sender_code(frame)
    if sender != identity.agency.text:
        raise SignerMismatch(
            f"the certificate is for {identity.agency}, but the message is From {sender}: refusing to sign"
        )
    if frame.signature is not None:
        frame.header.remove(frame.signature)
    parts = _signed_parts(frame)
    wanted = {id_value for id_value, _ in parts}
    for element in root.iter():
        if (
            isinstance(element.tag, str)
            and element.get(ID_ATTRIBUTE) in wanted
            and all(element is not part for _, part in parts)
        ):
            raise StructureError(
                f"element {ns.pretty(element.tag)} already uses Id {element.get(ID_ATTRIBUTE)!r}",
                where=f"line {element.sourceline}",
            )
    for id_value, element in parts:
        element.set(ID_ATTRIBUTE, id_value)

    signature = dsig.sign(parts, identity.key, [identity.certificate, *identity.intermediates], lifted)
    anchor = frame.trace_header_list if frame.trace_header_list is not None else frame.message_header
    anchor.addnext(signature)
    signature.tail = anchor.tail  # keep the indentation of the surrounding layout


def content_digest(root: etree._Element) -> str:
    """One value for what a message signed by :func:`sign_tree` says, apart from its relay hops.

    SHA-256 over the digests the signature holds of MessageHeader, Bussiness, edXMLBody and
    AttachmentEncoded: free after signing (no further pass over the attachments) and, being
    of the canonical XML, equal for the same document however often it is signed again.
    """
    signature = Envelope(root).signature
    if signature is None:
        raise StructureError("the message is not signed: it has no content digest yet")
    digests = {
        reference.get("URI"): reference.findtext(f"{{{ns.DSIG}}}DigestValue") or ""
        for reference in signature.iter(f"{{{ns.DSIG}}}Reference")
    }
    joined = "\n".join(digests.get(f"#edxml-{name}", "") for name in _PART_NAMES)
    return hashlib.sha256(joined.encode("ascii")).hexdigest()


def _sender_code(frame: Envelope) -> str:
    """From/OrganId, read exactly as the model reads it (one reader, one meaning)."""
    organ_ids = frame.message_header.findall(f"{{{ns.EDXML}}}From/{{{ns.EDXML}}}OrganId")
    if len(organ_ids) != 1:
        raise StructureError(
            "MessageHeader must name exactly one From/OrganId", where=f"line {frame.message_header.sourceline}"
        )
    return read_text(organ_ids[0])


# --- verifying ---------------------------------------------------------------------------------------


def verify_tree(
    root: etree._Element,
    trust: TrustStore | None,
    *,
    at: datetime | None = None,
    allow_sha1: bool = False,
    lifted: Lifted = NOT_LIFTED,
) -> SignatureVerdict:
    """Verify the signature of a parsed edXML tree (``lifted``: its runs, if it has any).

    Returns UNSIGNED for a message without a real XMLDSig signature, VALID for one that
    passes every check; raises a SignatureError subclass (with its code) otherwise.
    ``at``: when the certificate must have been valid (the receiving gateway passes the
    time its axis says it accepted the message); by default, now. No time written in the
    message counts: any hop after the signature could have been written by anyone.
    """
    frame = Envelope(root)
    signature = frame.signature
    if signature is None:
        return SignatureVerdict(SignatureState.UNSIGNED, "no signature")
    if signature.tag == ns.q("DigitalSignature"):
        return SignatureVerdict(SignatureState.UNSIGNED, "empty edXML:DigitalSignature placeholder (.NET SDK layout)")
    if signature.tag == ns.q("Signature"):
        return SignatureVerdict(
            SignatureState.UNSIGNED,
            "placeholder Signature in the edXML namespace (VNPT library layout); it is not XMLDSig",
        )
    offered = _certificates(signature)
    if not offered:
        return SignatureVerdict(SignatureState.UNSIGNED, "placeholder Signature: KeyInfo holds no readable certificate")

    method = signature.find(f"{{{ns.DSIG}}}SignedInfo/{{{ns.DSIG}}}SignatureMethod")
    method_uri = "" if method is None else method.get("Algorithm", "")
    digest_uris = [
        dm.get("Algorithm", "")
        for dm in signature.iterfind(f"{{{ns.DSIG}}}SignedInfo/{{{ns.DSIG}}}Reference/{{{ns.DSIG}}}DigestMethod")
    ]
    weak = [uri for uri in [method_uri, *digest_uris] if uri in _SHA1_URIS]
    if weak and not allow_sha1:
        raise WeakAlgorithm(f"SHA-1 ({weak[0]}) is refused; an admin may allow legacy senders explicitly")
    methods = {m.value for m in _STRONG_METHODS}
    digests = {d.value for d in _STRONG_DIGESTS}
    if allow_sha1:
        methods |= {SignatureMethod.RSA_SHA1.value, SignatureMethod.ECDSA_SHA1.value}
        digests |= {DigestAlgorithm.SHA1.value}
    plan = read_plan(signature, signature_methods=frozenset(methods), digest_methods=frozenset(digests))

    if trust is None:
        raise SignatureError("the message is signed but no trust store was given to check it against")
    hops = _hops(frame)
    _bound_references(plan, len(hops))
    for certificate in offered:  # bounded keys on allowed curves, before any is used
        check_key(certificate, "offered certificate")
    moment = at or datetime.now(UTC)
    sender = _sender_code(frame)
    try:
        leaf = dsig.find_signer(plan, offered)
    except SignatureError:
        raise
    except Exception as exc:  # a hostile signature must not surface as a library exception
        raise SignatureError(f"the signature cannot be processed: {type(exc).__name__}: {exc}") from None
    # Who signed, and whether they may, before any digest: a key nobody trusts costs one
    # signature check, not a canonicalisation of the whole message per Reference.
    signer = check_signer(leaf, trust, at=moment, offered=tuple(c for c in offered if c is not leaf))
    signer_code = signer.agency
    if signer_code.text != sender:
        raise SignerMismatch(
            f"signed with a certificate of {signer_code} {describe(leaf)}, but the message is From {sender}"
        )
    try:
        left_out = dsig.check_references(
            root, signature, plan, lifted=lifted, hops=hops, hop_list=frame.trace_header_list, id_attribute=ID_ATTRIBUTE
        )
    except SignatureError:
        raise
    except Exception as exc:
        raise SignatureError(f"the signature cannot be processed: {type(exc).__name__}: {exc}") from None
    if any(reference.whole_document for reference in plan.references):
        signed_hops = len(hops) - left_out  # everything else is signed: nothing can have been added or moved
    else:
        signed_hops = _check_coverage(root, frame, plan)
    relay_hops = len(hops) - signed_hops
    relayed = f"; {relay_hops} TraceHeader(s) appended by relays, unsigned" if relay_hops else ""
    return SignatureVerdict(
        SignatureState.VALID,
        f"signed by {signer_code}{relayed}",
        signer=signer_code.text,
        certificate=leaf,
        chain=signer.chain,
        algorithm=method_uri,
        signed_hops=signed_hops,
        relay_hops=relay_hops,
        checked_at=moment,
    )


def _bound_references(plan: Plan, hops: int) -> None:
    """No more References than the message has parts to sign, each URI once: a signature
    listing one part 64 times made the receiver canonicalise it 64 times (signed by anyone)."""
    uris = [reference.uri for reference in plan.references]
    if len(set(uris)) != len(uris):
        repeated = next(uri for uri in uris if uris.count(uri) > 1)
        raise SignatureCoverage(f"Reference URI {repeated!r} is listed more than once")
    most = len(_PART_NAMES) + hops + 1  # every part, every hop, and the whole document
    if len(uris) > most:
        raise SignatureCoverage(f"SignedInfo lists {len(uris)} References; this message has {most} things to sign")


def _hops(frame: Envelope) -> list[etree._Element]:
    if frame.trace_header_list is None:
        return []
    hop = ns.q("TraceHeader")
    return [child for child in frame.trace_header_list if isinstance(child.tag, str) and child.tag == hop]


def _certificates(signature: etree._Element) -> tuple[x509.Certificate, ...]:
    """Every certificate KeyInfo/X509Data offers, in the order given (none for a template).

    () only for a template: no X509Certificate that reads as a certificate and no other key
    material. A signature whose KeyInfo names a key some other way, or mixes readable and
    unreadable certificates, is a real signature we cannot accept: invalid.
    """
    key_info = signature.find(f"{{{ns.DSIG}}}KeyInfo")
    texts = [] if key_info is None else [el.text or "" for el in key_info.iter(f"{{{ns.DSIG}}}X509Certificate")]
    certificates: list[x509.Certificate | None] = []
    for text in texts[: MAX_OFFERED + 2]:
        certificates.append(_read_certificate("".join(text.split())))
    readable = tuple(c for c in certificates if c is not None)
    if not readable:
        other_keys = key_info is not None and any(
            isinstance(el.tag, str) and local_name(el) not in ("X509Data", "X509Certificate", "X509SubjectName")
            for el in key_info.iter()
            if el is not key_info
        )
        if other_keys:
            raise UntrustedCertificate("the signature names its key without a certificate; it cannot be checked")
        return ()
    if None in certificates:
        raise UntrustedCertificate("KeyInfo holds a certificate that cannot be read beside real ones")
    if len(texts) > MAX_OFFERED + 1:
        raise UntrustedCertificate(f"KeyInfo offers {len(texts)} certificates; at most {MAX_OFFERED + 1} are read")
    return readable


@functools.lru_cache(maxsize=512)
def _read_certificate(text: str) -> x509.Certificate | None:
    """A certificate from its base64, None when it reads as none. Remembered: a sender signs
    every message with the same certificate, and decoding it was a twentieth of a status check."""
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, x509.InvalidVersion):  # InvalidVersion is no ValueError
        return None


def _check_coverage(root: etree._Element, frame: Envelope, plan: Plan) -> int:
    """Every part that must be signed is referenced, by the element at its proper place.

    TraceHeaders may be left unreferenced only after the last referenced one: relays append.
    Returns how many TraceHeaders are signed.
    """
    uris = [reference.uri for reference in plan.references]
    referenced = {reference.id_value for reference in plan.references}

    parts = _covered_parts(frame)
    positions = {id(element) for element in parts}
    holders_by_id: dict[str, list[etree._Element]] = {}
    for element in root.iter():  # one pass over the tree, whatever the number of references
        id_value = _id_of(element) if isinstance(element.tag, str) and element.attrib else None
        if id_value in referenced:
            holders_by_id.setdefault(id_value, []).append(element)
    for id_value in referenced:
        holders = holders_by_id.get(id_value, [])
        if len(holders) != 1 or id(holders[0]) not in positions:
            raise SignatureCoverage(
                f"Reference #{id_value} points at an element that is not one of the message's signed parts"
            )
    signed_hops = [_id_of(el) for el in parts if local_name(el) == "TraceHeader" and _id_of(el) in referenced]
    if signed_hops != [uri[1:] for uri in uris if uri[1:] in signed_hops]:
        raise SignatureCoverage("the signed TraceHeaders are not in the order they were signed in")
    unsigned_seen = False
    for element in parts:
        covered = _id_of(element) in referenced
        name = local_name(element)
        if name == "TraceHeader":
            if covered and unsigned_seen:
                raise SignatureCoverage(
                    "an unsigned TraceHeader stands before a signed one: hops may only be appended",
                    where=f"line {element.sourceline}",
                )
            unsigned_seen = unsigned_seen or not covered
        elif not covered:
            raise SignatureCoverage(f"edXML:{name} is not covered by the signature", where=f"line {element.sourceline}")
    return len(signed_hops)


def _id_of(element: etree._Element) -> str | None:
    for name, value in element.attrib.items():
        if etree.QName(name).localname == ID_ATTRIBUTE:
            return value
    return None


def _covered_parts(frame: Envelope) -> list[etree._Element]:
    return [element for _, element in _signed_parts(frame)]
