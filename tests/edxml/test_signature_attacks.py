"""Signatures an attacker builds by hand: transforms that make a signature cover nothing,
whole-document signatures through relays, certificate order and weak EC curves.

Every signature here is crafted byte by byte (lxml, hashlib, cryptography), never by the
project's signer, so the tests show what a receiver gets from someone who does not use it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.relay import append_trace_header
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import SignatureMismatch, UntrustedCertificate
from gateway.pki import KeyPair
from tests.edxml.forgery import (
    BASE64,
    ENVELOPED,
    EXC,
    INC,
    INC_WITH_COMMENTS,
    VIETNAM,
    XPATH,
    XSLT,
    D,
    E,
    Ref,
    assert_transform_refused,
    check,
    craft_signature,
    on_part,
    part_refs,
    relay,
    signxml_agrees,
    whole,
    with_subject,
)
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

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
