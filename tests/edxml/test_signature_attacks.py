"""Signatures an attacker builds by hand: transforms that make a signature cover nothing,
whole-document signatures through relays, certificate order and weak EC curves.

Every signature here is crafted byte by byte (lxml, hashlib, cryptography), never by the
project's signer, so the tests show what a receiver gets from someone who does not use it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

import gateway.errors
from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.relay import append_trace_header
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import SignatureError, SignatureMismatch, UntrustedCertificate
from gateway.pki import KeyPair
from tests.edxml.test_signatures import relay
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

TransformRefused = getattr(gateway.errors, "TransformRefused", None)  # SIG209, new with the fix

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
VIETNAM = timezone(timedelta(hours=7))  # TraceHeader timestamps are local time, no DST
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


def check(data: bytes, pki) -> edxml.Validation:
    return edxml.validate(data, trust=pki.trust)


def assert_transform_refused(data: bytes, pki, *named: str) -> None:
    """SIG209, and the message names the offending transform (one of ``named``)."""
    with pytest.raises(TransformRefused or SignatureError) as caught:
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


# --- 1. transforms that make a signature say nothing ---------------------------------------------


def test_base64_forgery_token_on_the_whole_document_is_refused(pki):
    """URI="" with only the base64 transform digests b"" (the root's whitespace): pasted onto any message."""
    token_source = craft_signature(
        edxml.build_tree(full_document()), pki.agencies[PROVINCE], [Ref("", (BASE64,), octets=b"")]
    )
    token = token_source.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{D}Signature")
    other = replace(
        full_document(),
        subject="Về việc chuyển toàn bộ kinh phí cho đơn vị lạ",
        to=full_document().to[1:],
        attachments=(replace(full_document().attachments[0], data=b"MZ\x90\x00 not a pdf"),),
    )
    forged = edxml.build_tree(other)
    traces = forged.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
    traces.addnext(copy.deepcopy(token))
    signxml_agrees(serialize(forged), pki.agencies[PROVINCE].certificate, 1)  # a real forgery
    assert_transform_refused(serialize(forged), pki, BASE64)


def test_base64_transform_on_the_attachments_reference_is_refused(pki):
    """base64 of AttachmentEncoded's own text is b"": the attachment bytes are then unsigned."""
    root = edxml.build_tree(full_document())
    refs = on_part(part_refs(root), "AttachmentEncoded", (BASE64,), b"")
    craft_signature(root, pki.agencies[PROVINCE], refs)
    payload = root.find(f"{E}AttachmentEncoded/{E}Attachment/{E}ContentTransferEncoded")
    payload.text = "TVqQ" + payload.text[4:]  # an executable's "MZ" header in place of the first bytes
    signxml_agrees(serialize(root), pki.agencies[PROVINCE].certificate, len(refs))  # a real forgery
    assert_transform_refused(serialize(root), pki, BASE64)


@pytest.mark.parametrize(("transform", "part"), [(XPATH, "MessageHeader"), (XSLT, "Bussiness")], ids=["xpath", "xslt"])
def test_xpath_and_xslt_transforms_are_refused(pki, transform, part):
    """XPath and XSLT transforms select or rewrite what is digested; the gateway does not run them."""
    root = edxml.build_tree(full_document())
    craft_signature(root, pki.agencies[PROVINCE], on_part(part_refs(root), part, (transform, EXC)))
    assert_transform_refused(serialize(root), pki, transform)


@pytest.mark.parametrize(
    ("layout", "transforms", "named"),
    [
        ("by id", (EXC, ENVELOPED), (ENVELOPED,)),
        ("by id", (EXC, EXC), (EXC,)),
        ("whole document", (EXC,), (EXC, ENVELOPED)),  # no enveloped-signature: SignedInfo digests itself
    ],
    ids=["enveloped-after-c14n-on-an-id", "c14n-twice", "whole-document-without-enveloped"],
)
def test_transforms_out_of_place_or_repeated_are_refused(pki, layout, transforms, named):
    """Transforms in a wrong order, repeated, or missing the enveloped one: SIG209, not some digest error."""
    root = edxml.build_tree(full_document())
    refs = on_part(part_refs(root), "MessageHeader", transforms) if layout == "by id" else [Ref("", transforms)]
    assert_transform_refused(serialize(craft_signature(root, pki.agencies[PROVINCE], refs)), pki, *named)


@pytest.mark.parametrize(
    "transforms",
    [(ENVELOPED,), (ENVELOPED, EXC), (ENVELOPED, INC)],
    ids=["enveloped-only", "enveloped-exc-c14n", "enveloped-inclusive-c14n"],
)
def test_whole_document_signature_shapes_still_verify(pki, transforms):
    """Must pass: the standard enveloped shapes over URI="" are accepted."""
    pair = pki.agencies[PROVINCE]
    data = whole(edxml.build_tree(full_document()), pair, transforms)
    signxml_agrees(data, pair.certificate, 1)
    verdict = check(data, pki).signature
    assert verdict.valid and verdict.signer == PROVINCE
    assert getattr(verdict, "relay_hops", 0) == 0


@pytest.mark.parametrize("c14n", [INC, INC_WITH_COMMENTS], ids=["inclusive", "inclusive-with-comments"])
def test_detached_parts_with_inclusive_c14n_still_verify(pki, c14n):
    """Must pass: every part referenced by #Id, canonicalised with inclusive c14n 1.0."""
    pair = pki.agencies[PROVINCE]
    root = edxml.build_tree(full_document())
    refs = part_refs(root, (c14n,))
    data = serialize(craft_signature(root, pair, refs))
    signxml_agrees(data, pair.certificate, len(refs))
    assert check(data, pki).signature.valid


# --- 7. relays and the certificate list ----------------------------------------------------------------


def test_whole_document_signature_survives_relays(pki):
    """A relay appends TraceHeaders to a URI="" signed document; the signature still holds."""
    data = whole(edxml.build_tree(full_document()), pki.agencies[PROVINCE])
    signxml_agrees(data, pki.agencies[PROVINCE].certificate, 1)
    once = relay(data)
    twice = relay(once, "000.00.00.H41")
    for hops, relayed in ((1, once), (2, twice)):
        checked = check(relayed, pki)
        assert checked.signature.valid
        assert getattr(checked.signature, "relay_hops", None) == hops
    assert [t.organ_id.text for t in checked.message.trace_headers] == [PROVINCE, MINISTRY, "000.00.00.H41"]


def test_whole_document_signature_still_refuses_a_changed_subject(pki):
    """Must pass: relay tolerance does not let the Subject change, before or after a relay."""
    data = whole(edxml.build_tree(full_document()), pki.agencies[PROVINCE])
    for tampered in (with_subject(data, "Về việc giả mạo"), with_subject(relay(data), "Về việc giả mạo")):
        with pytest.raises(SignatureMismatch) as caught:
            check(tampered, pki)
        assert caught.value.code == "SIG202"


def without_trace_header_list(kind: str) -> tuple[etree._Element, str]:
    """A status message (built without the list) or a document whose list was cut out; and its sender."""
    if kind == "status":
        return edxml.build_tree(full_status()), DEPARTMENT
    root = edxml.build_tree(replace(full_document(), trace_headers=(), business=None))
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    header.remove(header.find(f"{E}TraceHeaderList"))
    return root, PROVINCE


@pytest.mark.parametrize("kind", ["status", "document"])
def test_whole_document_signature_without_trace_header_list_survives_a_relay(pki, kind):
    """Signed with no TraceHeaderList at all; the relay creates the list and its first hop."""
    root, sender = without_trace_header_list(kind)
    data = whole(root, pki.agencies[sender])
    signxml_agrees(data, pki.agencies[sender].certificate, 1)
    assert parse_xml(data).find(f".//{E}TraceHeaderList") is None
    assert check(data, pki).signature.valid
    root = parse_xml(data)
    append_trace_header(root, MINISTRY, datetime.now(VIETNAM).replace(tzinfo=None))  # the axis accepts it now
    checked = check(serialize(root), pki)
    assert checked.signature.valid
    assert getattr(checked.signature, "relay_hops", None) == 1


def test_detached_signature_counts_relay_hops(pki):
    """The gateway's own layout relayed twice: two unsigned hops reported."""
    verdict = check(relay(relay(edxml.sign_message(full_document(), pki.identity(PROVINCE)))), pki).signature
    assert verdict.valid
    assert getattr(verdict, "relay_hops", None) == 2


@pytest.mark.parametrize("ca_first", [True, False], ids=["ca-then-signer", "signer-then-ca"])
def test_key_info_may_list_the_ca_before_the_signer(pki, ca_first):
    """KeyInfo order is not the signer's to get right: the signer is the certificate whose key signed."""
    pair = pki.agencies[PROVINCE]
    order = [pki.ca.certificate, pair.certificate] if ca_first else [pair.certificate, pki.ca.certificate]
    root = edxml.build_tree(full_document())
    data = serialize(craft_signature(root, pair, part_refs(root), certificates=order))
    verdict = check(data, pki).signature
    assert verdict.valid and verdict.signer == PROVINCE
    assert verdict.certificate == pair.certificate


# --- 5. EC curves ------------------------------------------------------------------------------------------


def ec_signer(pki, curve: ec.EllipticCurve, code: str = PROVINCE) -> KeyPair:
    """A signing certificate for ``code`` on ``curve``, issued by the test CA like gateway.pki.issue."""
    key = ec.generate_private_key(curve)
    now = datetime.now(UTC)
    usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, code),
                    x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, code),
                ]
            )
        )
        .issuer_name(pki.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.ca.key.public_key()), critical=False)
        .sign(pki.ca.key, hashes.SHA256())
    )
    return KeyPair(key, certificate)


@pytest.fixture(scope="module", params=[ec.SECP192R1, ec.SECP224R1, ec.BrainpoolP256R1], ids=lambda c: c.name)
def weak_curve_signer(request, pki) -> KeyPair:
    return ec_signer(pki, request.param())


def test_signatures_on_unaccepted_curves_are_refused_naming_the_curve(pki, weak_curve_signer):
    """P-192, P-224 and brainpoolP256r1 certificates from the trusted CA: SIG205 naming the curve."""
    root = edxml.build_tree(full_document())
    data = serialize(craft_signature(root, weak_curve_signer, part_refs(root)))
    with pytest.raises(UntrustedCertificate) as caught:
        check(data, pki)
    assert caught.value.code == "SIG205"
    assert weak_curve_signer.key.curve.name in caught.value.message


@pytest.mark.parametrize(("curve", "hash_name"), [(ec.SECP384R1, "sha384"), (ec.SECP521R1, "sha512")])
def test_p384_and_p521_signatures_verify(pki, curve, hash_name):
    """Must pass: P-384 and P-521, signed by the gateway (ECDSA-SHA256) and by hand with their own hash."""
    pair = ec_signer(pki, curve())
    ours = edxml.sign_message(full_document(), edxml.SigningIdentity(key=pair.key, certificate=pair.certificate))
    root = edxml.build_tree(full_document())
    crafted = serialize(craft_signature(root, pair, part_refs(root), hash_name=hash_name))
    for data in (ours, crafted):
        assert check(data, pki).signature.valid


# --- found in an independent review of the fix ---------------------------------------------------------


def pretty_relay(data: bytes, organ_id: str = "000.00.00.H41") -> bytes:
    """A relay that pretty-prints: its hop gets the list's indentation before it."""
    root = parse_xml(data)
    traces = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
    last = traces[-1]
    hop = etree.Element(f"{E}TraceHeader")
    etree.SubElement(hop, f"{E}OrganId").text = organ_id
    etree.SubElement(hop, f"{E}Timestamp").text = f"{datetime.now(VIETNAM):%Y/%m/%d %H:%M:%S}"
    hop.tail, last.tail = last.tail, traces.text
    last.addnext(hop)
    return serialize(root)


@pytest.mark.parametrize("path", ["LP", "PL", "LPL", "PLP", "PP", "LL"])
def test_whole_document_signature_survives_relays_that_lay_out_hops_differently(pki, path):
    """One relay appends as lxml does (L), the next pretty-prints (P): each hop's whitespace differs."""
    data = whole(edxml.build_tree(full_document()), pki.agencies[PROVINCE])
    for step in path:
        data = relay(data) if step == "L" else pretty_relay(data)
    verdict = check(data, pki).signature
    assert verdict.valid and verdict.relay_hops == len(path)
    with pytest.raises(SignatureMismatch):
        check(with_subject(data, "Về việc giả mạo"), pki)


def test_whole_document_signature_over_an_empty_trace_header_list(pki):
    """A document with no hop and no Bussiness is built with an empty <TraceHeaderList/>: it was
    taken out before the first comparison, so a valid signature failed even before any relay."""
    root = edxml.build_tree(replace(full_document(), trace_headers=(), business=None))
    assert root.find(f".//{E}TraceHeaderList") is not None
    data = whole(root, pki.agencies[PROVINCE])
    signxml_agrees(data, pki.agencies[PROVINCE].certificate, 1)
    assert check(data, pki).signature.relay_hops == 0
    assert check(relay(data), pki).signature.relay_hops == 1


def test_a_key_nobody_trusts_is_refused_before_any_digest(pki):
    """Digests computed before the chain was checked let any self-made key cost the receiver a
    canonicalisation per Reference; now the untrusted certificate answers first."""
    from gateway.pki import create_ca, issue

    stranger = issue(create_ca("Nobody's CA"), PROVINCE)
    root = edxml.build_tree(full_document())
    refs = on_part(part_refs(root), "AttachmentEncoded", (EXC,), octets=b"not what it digests")
    with pytest.raises(UntrustedCertificate):  # not SIG202: the wrong digest is never computed
        check(serialize(craft_signature(root, stranger, refs)), pki)


def test_references_are_bounded_by_what_the_message_has_to_sign(pki):
    """64 References to one large part, or one URI listed twice: refused before any digest."""
    from gateway.errors import SignatureCoverage

    root = edxml.build_tree(full_document())
    refs = part_refs(root)
    attachments = next(r for r in refs if "AttachmentEncoded" in r.uri)
    for flood in ([*refs, attachments], refs + [attachments] * 20, refs + [attachments] * 60):
        with pytest.raises(SignatureCoverage, match=r"more than once|[Rr]eferences"):
            check(serialize(craft_signature(root, pki.agencies[PROVINCE], flood)), pki)


def test_inclusive_c14n_of_a_part_carries_the_xml_attributes_it_inherits():
    """C14N 1.0 puts xml:lang and xml:space of the ancestors onto the apex of a subtree; the
    copy a part is canonicalised from had lost them, so such a part never matched (found with
    xmlsec1 in review)."""
    from gateway.edxml.signedinfo import Canonicalization

    root = edxml.build_tree(full_document())
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "vi")
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    header.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    message_header = header.find(f"{E}MessageHeader")
    inclusive = Canonicalization(exclusive=False).apply(message_header)
    assert inclusive.startswith(b"<edXML:MessageHeader") and b'xml:lang="vi"' in inclusive.split(b">")[0]
    assert b'xml:space="preserve"' in inclusive.split(b">")[0]
    assert b"xml:lang" not in Canonicalization(exclusive=True).apply(message_header)  # exclusive c14n does not


def test_a_prefix_list_with_default_is_refused_rather_than_misread(pki):
    """lxml's exclusive c14n ignores '#default' in a PrefixList: such a signature would fail as
    tampered (SIG202); it is refused for what it is."""
    root = edxml.build_tree(full_document())
    data = serialize(craft_signature(root, pki.agencies[PROVINCE], part_refs(root)))
    parameter = f'<ec:InclusiveNamespaces xmlns:ec="{EXC}" PrefixList="#default"/>'
    plain = f'<Transform Algorithm="{EXC}"/>'
    with_default = data.replace(plain.encode(), f'<Transform Algorithm="{EXC}">{parameter}</Transform>'.encode(), 1)
    assert with_default != data
    assert_transform_refused(with_default, pki, "#default")


def test_a_certificate_whose_key_cannot_be_read_is_refused_not_a_crash(pki):
    """Found by the bit-flip fuzz after the reorder: a certificate is read lazily, so one whose
    key is broken inside a valid envelope raised ValueError from the key check."""
    import base64 as b64

    from cryptography.hazmat.primitives import serialization as ser

    certificate = pki.agencies[PROVINCE].certificate
    der = certificate.public_bytes(ser.Encoding.DER)
    spki = certificate.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    at = der.index(spki) + spki.index(b"\x03\x82") + 5  # the RSAPublicKey SEQUENCE inside the BIT STRING
    broken = der[:at] + bytes([der[at] ^ 1]) + der[at + 1 :]
    signed = edxml.sign_message(full_document(), pki.identity(PROVINCE)).decode()
    good = b64.b64encode(der).decode()
    assert good in signed
    with pytest.raises(UntrustedCertificate, match="cannot be read"):
        check(signed.replace(good, b64.b64encode(broken).decode()).encode(), pki)


def test_a_certificate_with_an_impossible_version_is_an_unreadable_one_not_a_crash(pki):
    """cryptography raises InvalidVersion, which is no ValueError, for a version field that
    is not v1-v3 (a flipped bit found it): the signature is refused like any unreadable one."""
    pair = pki.agencies[PROVINCE]
    data = edxml.sign_message(full_document(), edxml.SigningIdentity(pair.key, pair.certificate))
    der = pair.certificate.public_bytes(serialization.Encoding.DER)
    version = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2: X.509 v3
    assert der.count(version) == 1
    bad = der.replace(version, bytes.fromhex("a00302010a"))
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_certificate(bad)
    good_text, bad_text = base64.b64encode(der), base64.b64encode(bad)
    assert good_text in data
    with pytest.raises(gateway.errors.GatewayError) as caught:
        check(data.replace(good_text, bad_text), pki)
    assert caught.value.code.startswith(("SIG", "EDX")), caught.value
