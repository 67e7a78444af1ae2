"""Signature attacks found in reviews, each a test that failed before its fix, and the two
implementations (ours in gateway/edxml/dsig.py, signxml) agreeing on every shape we accept."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (
    SignatureConfiguration,
    XMLVerifier,
)

from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import (
    AttachmentError,
    GatewayError,
    SignatureCoverage,
    SignatureError,
    SignatureMismatch,
    StructureError,
    UntrustedCertificate,
)
from gateway.pki import KeyPair, create_ca, issue
from gateway.vxp.protocol import VIETNAM
from tests.edxml.forgery import (
    EXC,
    D,
    E,
    assert_transform_refused,
    attacker_sign,
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


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))


class TestReviewFindings:
    """Attacks found in review; each test failed before its fix."""

    def test_comment_cannot_cut_a_signed_attachment(self, signed, pki):
        text = signed.decode()
        match = re.search(r"(<edXML:ContentTransferEncoded[^>]*>)([A-Za-z0-9+/=]+)", text)
        payload = match.group(2)
        cut = text[: match.start(2)] + payload[:8] + "<!--x-->" + payload[8:] + text[match.end(2) :]
        with pytest.raises(AttachmentError, match="comment"):
            check(cut.encode(), pki)

    def test_comment_cannot_change_the_sender_the_certificate_is_compared_with(self, pki):
        root = edxml.build_tree(full_document())
        organ_id = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}From/{E}OrganId")
        comment = etree.Comment("")
        comment.tail = ".001"
        organ_id.append(comment)  # <OrganId>000.00.00.H58<!---->.001</OrganId>
        with pytest.raises(StructureError, match="comment"):
            edxml.sign(serialize(root), pki.identity(PROVINCE))
        with pytest.raises(StructureError, match="comment"):
            check(serialize(attacker_sign(root, pki.agencies[PROVINCE])), pki)

    def test_an_unreadable_certificate_beside_a_real_one_is_invalid_not_unsigned(self, signed, pki):
        forged = signed.decode().replace("Về việc triển khai", "Về việc giả mạo")
        forged = forged.replace("</X509Data>", "<X509Certificate>!</X509Certificate></X509Data>")
        with pytest.raises(UntrustedCertificate, match="cannot be read"):
            check(forged.encode(), pki, require_signature=False)

    def test_a_key_without_a_certificate_is_invalid_not_unsigned(self, signed, pki):
        text = re.sub(r"<X509Data>.*?</X509Data>", "<KeyName>somebody</KeyName>", signed.decode(), flags=re.S)
        with pytest.raises(UntrustedCertificate, match="without a certificate"):
            check(text.encode(), pki, require_signature=False)

    def test_signed_trace_headers_cannot_be_reordered(self, pki):
        hops = (
            edxml.TraceHeader(edxml.AgencyCode(PROVINCE), datetime(2023, 7, 3, 8, 0)),
            edxml.TraceHeader(edxml.AgencyCode(MINISTRY), datetime(2023, 7, 3, 9, 0)),
        )
        from dataclasses import replace as with_

        root = parse_xml(edxml.sign_message(with_(full_document(), trace_headers=hops), pki.identity(PROVINCE)))
        first, second = root.iter(f"{E}TraceHeader")
        first.addprevious(second)
        with pytest.raises(SignatureCoverage, match="order"):
            check(serialize(root), pki)

    def test_a_certificate_with_broken_extensions_is_a_gateway_error(self, signed, pki):
        import base64

        from cryptography.hazmat.primitives import serialization

        der = pki.agencies[PROVINCE].certificate.public_bytes(serialization.Encoding.DER)
        broken = der.replace(bytes.fromhex("0603551d0e"), bytes.fromhex("0603551d13"))  # a second BasicConstraints
        text = signed.decode()
        match = re.search(r"<X509Certificate>([^<]*)</X509Certificate>", text)
        tampered = text[: match.start(1)] + base64.b64encode(broken).decode() + text[match.end(1) :]
        with pytest.raises(SignatureError):
            check(tampered.encode(), pki)

    def test_many_offered_certificates_are_refused_before_any_is_tried(self, signed, pki):
        text = signed.decode()
        certificate = re.search(r"<X509Certificate>[^<]*</X509Certificate>", text).group(0)
        flooded = text.replace(certificate, certificate * 1000)
        with pytest.raises(UntrustedCertificate, match="1000 certificates"):
            check(flooded.encode(), pki)

    def test_path_length_and_key_cert_sign_of_intermediates_are_enforced(self, pki):
        from cryptography import x509

        from gateway.edxml.certs import AGENCY_CODE_OID

        now = datetime.now(UTC)

        def make(subject, key, issuer, issuer_key, *, ca, path_length=None, org=None):
            names = [x509.NameAttribute(NameOID.COMMON_NAME, subject)]
            names += [x509.NameAttribute(AGENCY_CODE_OID, org)] if org else []
            usage = x509.KeyUsage(not ca, not ca, False, False, False, ca, ca, False, False)
            return (
                x509.CertificateBuilder()
                .subject_name(x509.Name(names))
                .issuer_name(issuer)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
                .add_extension(usage, critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
                )
                .sign(issuer_key, hashes.SHA256())
            )

        root_key, sub_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root, no sub-CA allowed")])
        root = make("Root, no sub-CA allowed", root_key, root_name, root_key, ca=True, path_length=0)
        sub = make("Rogue sub-CA", sub_key, root.subject, root_key, ca=True)
        leaf = KeyPair(leaf_key, make("leaf", leaf_key, sub.subject, sub_key, ca=False, org=PROVINCE))
        identity = edxml.SigningIdentity(key=leaf.key, certificate=leaf.certificate, intermediates=(sub,))
        data = edxml.sign_message(full_document(), identity)
        with pytest.raises(UntrustedCertificate, match="does not chain"):
            edxml.validate(data, trust=edxml.TrustStore((root,)))


class TestTwoImplementations:
    """Signatures are made and checked in place (gateway/edxml/dsig.py); signxml, an
    independent implementation, must agree both ways on every shape we accept."""

    @pytest.mark.parametrize("code", [PROVINCE, DEPARTMENT])  # an RSA and an EC key
    def test_signxml_verifies_what_we_sign(self, pki, code):

        message = full_document(sender=code) if code == PROVINCE else full_status()
        root = parse_xml(edxml.sign_message(message, pki.identity(code)))
        references = len(root.findall(f".//{D}Reference"))
        verified = XMLVerifier().verify(
            root,
            x509_cert=pki.identity(code).certificate,
            id_attribute="Id",
            expect_config=SignatureConfiguration(expect_references=references),
        )
        results = verified if isinstance(verified, list) else [verified]
        assert len(results) == references >= (5 if code == PROVINCE else 1)

    def test_a_signxml_signature_of_our_shape_is_checked_in_place(self, pki):
        root = parse_xml(serialize(attacker_sign(edxml.build_tree(full_document()), pki.agencies[PROVINCE])))
        assert check(serialize(root), pki).signature.valid
        root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}Subject").text = "Đổi"
        with pytest.raises(SignatureMismatch, match="digest of #x-MessageHeader-0"):
            check(serialize(root), pki)

    def test_an_inclusive_namespaces_parameter_is_part_of_what_is_signed(self, pki):
        root = parse_xml(serialize(attacker_sign(edxml.build_tree(full_document()), pki.agencies[PROVINCE])))
        signature = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{D}Signature")
        # InclusiveNamespaces: a PrefixList changes what exclusive c14n emits
        for transform in signature.iter(f"{D}Transform"):
            etree.SubElement(transform, "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces", PrefixList="")
        with pytest.raises(SignatureMismatch):  # SignedInfo changed after signing
            check(serialize(root), pki)

    def test_a_signxml_whole_document_signature_is_checked_in_place(self, pki):
        pair = pki.agencies[PROVINCE]
        root = parse_xml(serialize(attacker_sign(edxml.build_tree(full_document()), pair, whole_document=True)))
        assert check(serialize(root), pki).signature.valid

    def test_ecdsa_value_of_the_wrong_length_is_a_mismatch(self, pki):
        root = parse_xml(edxml.sign_message(full_status(), pki.identity(DEPARTMENT)))
        value = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{D}Signature/{D}SignatureValue")
        value.text = value.text[:-8] + "="
        with pytest.raises((SignatureMismatch, SignatureError)):
            check(serialize(root), pki)


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
    with pytest.raises(GatewayError) as caught:
        check(data.replace(good_text, bad_text), pki)
    assert caught.value.code.startswith(("SIG", "EDX")), caught.value
