"""Signatures the tests build by hand, as someone who does not use the project's signer would.

``craft_signature`` writes a <Signature> byte by byte (lxml, hashlib, cryptography), so any
transform, order of references or curve can be offered; ``attacker_sign`` uses signxml
directly; ``relay`` is what an axis does to a message on the way.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from signxml import (
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureConstructionMethod,
    SignatureMethod,
    SignatureReference,
    XMLSigner,
    XMLVerifier,
)

from gateway import edxml
from gateway.edxml import VIETNAM  # TraceHeader timestamps are local time, no DST
from gateway.edxml.build import serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.signature import C14N
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import TransformRefused
from gateway.pki import KeyPair
from tests.messages import MINISTRY

E = f"{{{EDXML}}}"
D = f"{{{DSIG}}}"

EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
INC = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
INC_WITH_COMMENTS = INC + "#WithComments"
C14N_METHODS = (EXC, EXC + "WithComments", INC, INC_WITH_COMMENTS)
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
MORE = "http://www.w3.org/2001/04/xmldsig-more#"
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


# --- the attacker's signer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """One Reference: its URI, its Transform Algorithms in order, and what its digest is over.

    ``octets`` None: the bytes the transforms give when only enveloped-signature and c14n
    are understood (the last c14n listed, inclusive c14n 1.0 without one); anything else
    is left out, as a verifier that ignores unknown transforms would. Otherwise: exactly
    these bytes (what a base64 transform of the element's own text yields, say).
    """

    uri: str
    transforms: tuple[str, ...] = (EXC,)
    octets: bytes | None = None


def craft_signature(
    root: etree._Element,
    signer: KeyPair,
    refs: list[Ref],
    *,
    certificates: list[x509.Certificate] | None = None,
    hash_name: str = "sha256",
) -> etree._Element:
    """Put a hand-made <Signature> in edXMLHeader after TraceHeaderList (after MessageHeader
    without one), digests and SignatureValue computed where it stands; returns ``root``."""
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    for old in header.findall(f"{D}Signature"):
        header.remove(old)
    signature = etree.Element(f"{D}Signature", nsmap={None: DSIG})
    signed_info = etree.SubElement(signature, f"{D}SignedInfo")
    etree.SubElement(signed_info, f"{D}CanonicalizationMethod", Algorithm=EXC)
    is_ec = isinstance(signer.key, ec.EllipticCurvePrivateKey)
    method = f"{MORE}{'ecdsa' if is_ec else 'rsa'}-{hash_name}"
    etree.SubElement(signed_info, f"{D}SignatureMethod", Algorithm=method)
    digest_values = []
    for ref in refs:
        reference = etree.SubElement(signed_info, f"{D}Reference", URI=ref.uri)
        if ref.transforms:
            transforms = etree.SubElement(reference, f"{D}Transforms")
            for algorithm in ref.transforms:
                _transform(transforms, algorithm)
        etree.SubElement(reference, f"{D}DigestMethod", Algorithm=SHA256)
        digest_values.append(etree.SubElement(reference, f"{D}DigestValue"))
    etree.SubElement(signature, f"{D}SignatureValue")
    x509_data = etree.SubElement(etree.SubElement(signature, f"{D}KeyInfo"), f"{D}X509Data")
    for certificate in certificates or [signer.certificate]:
        der = certificate.public_bytes(serialization.Encoding.DER)
        etree.SubElement(x509_data, f"{D}X509Certificate").text = base64.b64encode(der).decode()

    anchor = header.find(f"{E}TraceHeaderList")
    anchor = header.find(f"{E}MessageHeader") if anchor is None else anchor
    anchor.addnext(signature)
    signature.tail = anchor.tail

    for ref, value in zip(refs, digest_values, strict=True):
        octets = ref.octets if ref.octets is not None else transformed(root, ref)
        value.text = base64.b64encode(hashlib.sha256(octets).digest()).decode()
    data = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    if is_ec:
        r, s = decode_dss_signature(signer.key.sign(data, ec.ECDSA(HASHES[hash_name]())))
        size = (signer.key.curve.key_size + 7) // 8
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")  # XMLDSig: r‖s, not DER
    else:
        raw = signer.key.sign(data, padding.PKCS1v15(), HASHES[hash_name]())
    signature.find(f"{D}SignatureValue").text = base64.b64encode(raw).decode()
    return root


def _transform(transforms: etree._Element, algorithm: str) -> None:
    transform = etree.SubElement(transforms, f"{D}Transform", Algorithm=algorithm)
    if algorithm == XPATH:  # a spec-complete verifier would leave the Subject out of the digest
        xpath = etree.SubElement(transform, f"{D}XPath", nsmap={"edXML": EDXML})
        xpath.text = "not(ancestor-or-self::edXML:Subject)"
    elif algorithm == XSLT:
        xsl = "http://www.w3.org/1999/XSL/Transform"
        sheet = etree.SubElement(transform, f"{{{xsl}}}stylesheet", version="1.0", nsmap={"xsl": xsl})
        etree.SubElement(etree.SubElement(sheet, f"{{{xsl}}}template", match="/"), f"{{{xsl}}}text").text = "x"


def transformed(root: etree._Element, ref: Ref) -> bytes:
    """What enveloped-signature and c14n make of the referenced node (other transforms ignored)."""
    document = etree.fromstring(etree.tostring(root))  # a copy: the enveloped transform removes
    if ref.uri == "":
        target = document
    else:
        (target,) = document.xpath("//*[@Id=$v]", v=ref.uri[1:])
    if ENVELOPED in ref.transforms:
        _remove_keeping_tail(document.find(f".//{D}Signature"))
    if target is not document:
        # the subtree on its own, its in-scope namespaces declared on it: lxml's in-place inclusive
        # c14n of AttachmentEncoded writes xmlns="" on its grandchildren, which XML-C14N does not
        target = etree.fromstring(etree.tostring(target))
    methods = [t for t in ref.transforms if t in C14N_METHODS]
    method = methods[-1] if methods else INC
    return etree.tostring(
        target, method="c14n", exclusive=method.startswith(EXC), with_comments=method.endswith("#WithComments")
    )


def _remove_keeping_tail(element: etree._Element) -> None:
    parent, previous = element.getparent(), element.getprevious()
    if element.tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def part_refs(root: etree._Element, transforms: tuple[str, ...] = (EXC,)) -> list[Ref]:
    """A detached Reference by Id to every part the gateway wants covered, in document order."""
    refs = []
    for name in ("MessageHeader", "Bussiness", "TraceHeader", "edXMLBody", "AttachmentEncoded"):
        for index, element in enumerate(root.iter(f"{E}{name}")):
            element.set("Id", f"a-{name}-{index}")
            refs.append(Ref(f"#a-{name}-{index}", transforms))
    return refs


def on_part(refs: list[Ref], part: str, transforms: tuple[str, ...], octets: bytes | None = None) -> list[Ref]:
    return [Ref(r.uri, transforms, octets) if r.uri.startswith(f"#a-{part}-") else r for r in refs]


def whole(root: etree._Element, signer: KeyPair, transforms: tuple[str, ...] = (ENVELOPED, EXC)) -> bytes:
    """An enveloped signature over the whole document (URI=""), as serialized bytes."""
    return serialize(craft_signature(root, signer, [Ref("", transforms)]))


def check(data: bytes, pki, **kwargs) -> edxml.Validation:
    return edxml.validate(data, trust=pki.trust, **kwargs)


def assert_transform_refused(data: bytes, pki, *named: str) -> None:
    """SIG209, and the message names the offending transform (one of ``named``)."""
    with pytest.raises(TransformRefused) as caught:
        check(data, pki)
    assert caught.value.code == "SIG209", caught.value
    assert any(uri in caught.value.message for uri in named), caught.value.message


def signxml_agrees(data: bytes, certificate: x509.Certificate, references: int) -> None:
    """An independent implementation verifies the crafted signature: the helper is right."""
    XMLVerifier().verify(
        data,
        x509_cert=certificate,
        id_attribute="Id",
        expect_config=SignatureConfiguration(expect_references=references),
    )


def with_subject(data: bytes, subject: str) -> bytes:
    root = parse_xml(data)
    root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}Subject").text = subject
    return serialize(root)


def relay(data: bytes, organ_id: str = MINISTRY) -> bytes:
    """What an axis does on the way: append a TraceHeader, re-serialise the whole file."""
    root = parse_xml(data)
    traces = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
    hop = etree.SubElement(traces, f"{E}TraceHeader")
    etree.SubElement(hop, f"{E}OrganId").text = organ_id
    etree.SubElement(hop, f"{E}Timestamp").text = f"{datetime.now(VIETNAM):%Y/%m/%d %H:%M:%S}"  # when it accepted it
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class _AnyAlgorithmSigner(XMLSigner):
    """signxml refuses to make SHA-1 signatures; legacy senders (and attackers) do not."""

    def check_deprecated_methods(self) -> None:
        return None


def attacker_sign(
    root: etree._Element,
    pair,
    *,
    method: SignatureMethod = SignatureMethod.RSA_SHA256,
    digest: DigestAlgorithm = DigestAlgorithm.SHA256,
    parts: tuple[str, ...] = ("MessageHeader", "Bussiness", "TraceHeader", "edXMLBody", "AttachmentEncoded"),
    extra_uris: tuple[str, ...] = (),
    whole_document: bool = False,
) -> etree._Element:
    """Sign with signxml directly, as someone not using our signer would; returns the signed tree."""
    uris = []
    for name in parts:
        for index, element in enumerate(root.iter(f"{E}{name}")):
            element.set("Id", f"x-{name}-{index}")
            uris.append(f"#x-{name}-{index}")
    signer = _AnyAlgorithmSigner(
        method=SignatureConstructionMethod.enveloped if whole_document else SignatureConstructionMethod.detached,
        signature_algorithm=method,
        digest_algorithm=digest,
        c14n_algorithm=C14N,
    )
    signer.namespaces = {None: DSIG}
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    if whole_document:
        placeholder = etree.SubElement(header, f"{D}Signature", Id="placeholder", nsmap={None: DSIG})
        assert placeholder is not None
        return signer.sign(root, key=pair.key, cert=[pair.certificate])  # a signed copy
    signature = signer.sign(
        root,
        key=pair.key,
        cert=[pair.certificate],
        reference_uri=[SignatureReference(URI=uri, c14n_method=C14N) for uri in [*uris, *extra_uris]],
    )
    header.append(signature)
    return root
