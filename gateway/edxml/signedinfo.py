"""What a SignedInfo may say, read into a plan the verifier follows, and nothing else.

XMLDSig lets a Reference name any chain of transforms, and a generic library runs what it
can and skips what it cannot: signxml applies the base64 transform to an element as the
decoding of its first text node (the digest of nothing, so one such signature validates
on every message of the same sender) and silently ignores XPath and XSLT. A signature of
legal value must mean exactly one thing, so only the shapes that our signer and the
public edXML variants use are accepted, each transform in the one position it may take:

* a Reference by ``#Id``: ``[enveloped-signature] [c14n]``;
* the whole document, ``URI=""``: ``enveloped-signature [c14n]`` (the enveloped transform is
  what keeps the Signature itself out of what it signs, so it is required);

where c14n is inclusive or exclusive C14N 1.0, with or without comments, the exclusive one
with an optional InclusiveNamespaces PrefixList. Without a c14n transform the node-set is
canonicalised with inclusive C14N 1.0, as XMLDSig says. Both URI forms exclude comments
from the node-set, so a "WithComments" transform of a Reference keeps none (XMLDSig
4.4.3.3); SignedInfo's own CanonicalizationMethod keeps them when it says so. Anything
else is refused with TransformRefused (SIG209), naming the transform.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from gateway.edxml import ns
from gateway.edxml.xmlsafe import new_parser
from gateway.errors import SignatureCoverage, SignatureError, TransformRefused

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
INC_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
INC_C14N_COMMENTS = INC_C14N + "#WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_XML_ATTRIBUTE = "{http://www.w3.org/XML/1998/namespace}"

# algorithm URI → (exclusive, with comments)
_C14N_METHODS = {
    EXC_C14N: (True, False),
    EXC_C14N_COMMENTS: (True, True),
    INC_C14N: (False, False),
    INC_C14N_COMMENTS: (False, True),
}
MAX_REFERENCES = 64  # ours carry five plus one per signed hop; more is only ever work for us


def _ds(name: str) -> str:
    return f"{{{ns.DSIG}}}{name}"


@dataclass(frozen=True)
class Canonicalization:
    """One C14N 1.0 variant, applied to an element (its subtree) or a whole document."""

    exclusive: bool
    with_comments: bool = False
    prefixes: tuple[str, ...] = ()

    def apply(self, node: etree._Element | etree._ElementTree) -> bytes:
        if isinstance(node, etree._Element) and node.getparent() is not None and self._needs_a_copy():
            node = _standalone(node)
        return etree.tostring(
            node,
            method="c14n",
            exclusive=self.exclusive,
            with_comments=self.with_comments,
            inclusive_ns_prefixes=list(self.prefixes) if self.exclusive and self.prefixes else None,
        )

    def _needs_a_copy(self) -> bool:
        # lxml canonicalises a subtree in place inclusively with a wrong xmlns="" on the
        # grandchildren of an element whose default namespace an ancestor declares (SignedInfo
        # under Signature, AttachmentEncoded under edXML).
        return not self.exclusive


def _standalone(element: etree._Element) -> etree._Element:
    """``element`` as a document of its own, canonicalised as the subtree is: its serialisation
    declares every namespace in scope, and it gets the xml:lang, xml:space and other xml:
    attributes it inherits (C14N 1.0 carries them onto the apex of a subtree)."""
    copy = etree.fromstring(etree.tostring(element, with_tail=False), parser=new_parser())
    for ancestor in element.iterancestors():  # the nearest one wins
        for name, value in ancestor.attrib.items():
            if name.startswith(_XML_ATTRIBUTE) and name not in copy.attrib:
                copy.set(name, value)
    return copy


INCLUSIVE = Canonicalization(exclusive=False)


@dataclass(frozen=True)
class Reference:
    """One checked Reference: what it points at, how it is canonicalised, what it must hash to."""

    uri: str
    enveloped: bool
    canonicalization: Canonicalization
    digest_uri: str
    expected: bytes

    @property
    def whole_document(self) -> bool:
        return self.uri == ""

    @property
    def id_value(self) -> str:
        return self.uri[1:]


@dataclass(frozen=True)
class Plan:
    """A SignedInfo read and accepted: the verifier needs nothing else from the Signature."""

    signed_info: etree._Element
    canonicalization: Canonicalization
    method_uri: str
    references: tuple[Reference, ...]
    value: bytes

    def signed_bytes(self) -> bytes:
        """SignedInfo canonicalised where it stands: what the SignatureValue signs."""
        return self.canonicalization.apply(self.signed_info)


def read_plan(signature: etree._Element, *, signature_methods: frozenset[str], digest_methods: frozenset[str]) -> Plan:
    """Read a real XMLDSig Signature into a Plan, or raise the SignatureError that says why not."""
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        raise SignatureError("the Signature has no SignedInfo")
    method_element = signed_info.find(_ds("CanonicalizationMethod"))
    if method_element is None:
        raise SignatureError("SignedInfo has no CanonicalizationMethod")
    canonicalization = _canonicalization(method_element, "CanonicalizationMethod")
    signature_method = signed_info.find(_ds("SignatureMethod"))
    method_uri = "" if signature_method is None else signature_method.get("Algorithm", "")
    if method_uri not in signature_methods:
        raise SignatureError(f"signature method {method_uri!r} is not accepted")
    # XMLDSig lets SignatureMethod carry elements of other namespaces (signed, meaningless to
    # RSA and ECDSA); its own parameter, HMACOutputLength, belongs to HMAC, never accepted here
    if signature_method is not None and any(
        child.tag.startswith(f"{{{ns.DSIG}}}") for child in _children(signature_method)
    ):
        raise SignatureError(f"SignatureMethod {method_uri!r} takes no XMLDSig parameters here")
    elements = signed_info.findall(_ds("Reference"))
    if not elements:
        raise SignatureCoverage("SignedInfo has no Reference")
    if len(elements) > MAX_REFERENCES:
        raise SignatureCoverage(f"SignedInfo has {len(elements)} references; at most {MAX_REFERENCES} are read")
    references = tuple(_reference(element, digest_methods) for element in elements)
    value_element = signature.find(_ds("SignatureValue"))
    value = _base64(value_element, "SignatureValue")
    return Plan(signed_info, canonicalization, method_uri, references, value)


def _reference(element: etree._Element, digest_methods: frozenset[str]) -> Reference:
    uri = element.get("URI")
    if uri is None or (uri != "" and (not uri.startswith("#") or len(uri) < 2 or uri.startswith("#xpointer("))):
        raise SignatureCoverage(f"Reference URI {uri!r} does not point into the message by Id or as a whole")
    enveloped = False
    canonicalization: Canonicalization | None = None
    transforms = element.find(_ds("Transforms"))
    for position, transform in enumerate(() if transforms is None else _children(transforms)):
        algorithm = transform.get("Algorithm", "")
        if transform.tag != _ds("Transform"):
            raise TransformRefused(f"Reference {uri!r}: {ns.pretty(transform.tag)} is not a Transform")
        if algorithm == ENVELOPED:
            if position != 0:
                raise TransformRefused(f"Reference {uri!r}: the transform {ENVELOPED!r} may only come first")
            if any(True for _ in _children(transform)):
                raise TransformRefused(f"Reference {uri!r}: the transform {ENVELOPED!r} takes no parameters")
            enveloped = True
        elif algorithm in _C14N_METHODS:
            if canonicalization is not None:
                raise TransformRefused(f"Reference {uri!r}: a second canonicalization {algorithm!r}")
            canonicalization = _canonicalization(transform, "Transform")
        else:
            raise TransformRefused(
                f"Reference {uri!r}: the transform {algorithm!r} is not accepted"
                " (only enveloped-signature, then inclusive or exclusive C14N 1.0)"
            )
    if uri == "" and not enveloped:
        raise TransformRefused(
            'a whole-document Reference (URI="") must use the transform'
            f" {ENVELOPED!r}, then at most one canonicalization"
        )
    method = element.find(_ds("DigestMethod"))
    digest_uri = "" if method is None else method.get("Algorithm", "")
    if digest_uri not in digest_methods:
        raise SignatureError(f"digest method {digest_uri!r} is not accepted")
    canonicalization = canonicalization or INCLUSIVE
    # both URI forms leave comments out of the node-set, whatever the transform says
    without_comments = Canonicalization(canonicalization.exclusive, False, canonicalization.prefixes)
    expected = _base64(element.find(_ds("DigestValue")), "DigestValue")
    return Reference(uri, enveloped, without_comments, digest_uri, expected)


def _canonicalization(element: etree._Element, what: str) -> Canonicalization:
    algorithm = element.get("Algorithm", "")
    if algorithm not in _C14N_METHODS:
        raise TransformRefused(f"{what} {algorithm!r} is not accepted (only inclusive or exclusive C14N 1.0)")
    exclusive, with_comments = _C14N_METHODS[algorithm]
    prefixes: tuple[str, ...] = ()
    for child in _children(element):
        if not exclusive or child.tag != f"{{{_EXC_NS}}}InclusiveNamespaces" or prefixes:
            raise TransformRefused(f"{what} {algorithm!r}: the parameter {ns.pretty(child.tag)} is not accepted")
        prefixes = tuple(child.get("PrefixList", "").split()) or ("",)
        if "#default" in prefixes:  # lxml's exclusive c14n leaves the default namespace out whatever it is told
            raise TransformRefused(f"{what} {algorithm!r}: the PrefixList token '#default' is not supported")
    return Canonicalization(exclusive, with_comments, tuple(p for p in prefixes if p))


def _children(element: etree._Element) -> list[etree._Element]:
    """Element children; comments and processing instructions carry no meaning here."""
    return [child for child in element if isinstance(child.tag, str)]


def _base64(element: etree._Element | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)  # type: ignore[union-attr]
    except (AttributeError, ValueError, binascii.Error):
        raise SignatureError(f"a {what} is missing or not base64") from None
