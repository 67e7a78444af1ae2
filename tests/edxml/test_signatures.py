"""Signatures: relay-safe, tamper-evident, bound to the sender's agency, refusing attacks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod, SignatureReference, XMLSigner

from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.signature import C14N, SignatureState
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import (
    AttachmentError,
    CertificateExpired,
    CertificateUsage,
    KeyMaterialError,
    SignatureCoverage,
    SignatureError,
    SignatureMismatch,
    SignatureMissing,
    SignerMismatch,
    StructureError,
    UntrustedCertificate,
    WeakAlgorithm,
)
from gateway.pki import create_ca, issue
from gateway.vxp.protocol import VIETNAM
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

E = f"{{{EDXML}}}"
D = f"{{{DSIG}}}"


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))


def check(data: bytes, pki, **kwargs) -> edxml.Validation:
    return edxml.validate(data, trust=pki.trust, **kwargs)


def relay(data: bytes, organ_id: str = MINISTRY) -> bytes:
    """What an axis does on the way: append a TraceHeader, re-serialise the whole file."""
    root = parse_xml(data)
    traces = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
    hop = etree.SubElement(traces, f"{E}TraceHeader")
    etree.SubElement(hop, f"{E}OrganId").text = organ_id
    etree.SubElement(hop, f"{E}Timestamp").text = f"{datetime.now(VIETNAM):%Y/%m/%d %H:%M:%S}"  # when it accepted it
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


class TestGoodSignatures:
    def test_rsa_document_verifies_strictly(self, signed, pki):
        checked = check(signed, pki, mode=edxml.SchemaMode.STRICT)
        assert checked.signature.state is SignatureState.VALID
        assert checked.signature.signer == PROVINCE
        assert checked.message == full_document()
        assert checked.signature.algorithm.endswith("rsa-sha256")

    def test_ecdsa_status_verifies(self, pki):
        data = edxml.sign_message(full_status(sender=DEPARTMENT), pki.identity(DEPARTMENT))
        checked = check(data, pki, mode=edxml.SchemaMode.STRICT)
        assert checked.signature.signer == DEPARTMENT
        assert checked.signature.algorithm.endswith("ecdsa-sha256")

    def test_signature_sits_after_trace_header_list_in_the_header(self, signed):
        header = parse_xml(signed).find(f"{E}edXMLEnvelope/{E}edXMLHeader")
        names = [child.tag for child in header]
        assert names == [f"{E}MessageHeader", f"{E}TraceHeaderList", f"{D}Signature"]
        assert b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">' in signed

    def test_relays_may_append_trace_headers(self, signed, pki):
        twice = relay(relay(signed), "000.00.00.H41")
        checked = check(twice, pki)
        assert checked.signature.valid
        assert [t.organ_id.text for t in checked.message.trace_headers] == [PROVINCE, MINISTRY, "000.00.00.H41"]

    def test_signing_bytes_replaces_a_placeholder(self, pki):
        unsigned = edxml.build(full_document())
        resigned = edxml.sign(edxml.sign(unsigned, pki.identity(PROVINCE)), pki.identity(PROVINCE))
        assert resigned.count(b"<SignatureValue>") == 1
        assert check(resigned, pki).signature.valid

    def test_verification_at_a_given_time(self, signed, pki):
        assert check(signed, pki, at=datetime.now(UTC) + timedelta(days=30)).signature.valid


class TestTampering:
    """Changing any byte of a signed part breaks the signature."""

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("Về việc triển khai", "Về việc hủy bỏ"),  # Subject
            ("<edXML:OrganId>000.00.11.H58</edXML:OrganId>", "<edXML:OrganId>000.00.12.H58</edXML:OrganId>"),  # To
            ("<edXML:CodeNumber>1234<", "<edXML:CodeNumber>1235<"),
            ("<edXML:Paper>1<", "<edXML:Paper>0<"),  # Bussiness
            ("<edXML:Timestamp>2023/07/03 08:30:00<", "<edXML:Timestamp>2023/07/04 08:30:00<"),  # sender's hop
            (
                "<edXML:ContentType>application/pdf</edXML:ContentType>",
                "<edXML:ContentType>text/html</edXML:ContentType>",
            ),
            ("<AttachmentName>Quyết định 0.pdf<", "<AttachmentName>Quyết định 0.exe<"),
        ],
    )
    def test_changed_text(self, signed, pki, old, new):
        text = signed.decode()
        assert old in text
        with pytest.raises(SignatureMismatch) as caught:
            check(text.replace(old, new, 1).encode(), pki)
        assert caught.value.code == "SIG202"

    def test_changed_attachment_bytes(self, signed, pki):
        root = parse_xml(signed)
        payload = root.find(f"{E}AttachmentEncoded/{E}Attachment/{E}ContentTransferEncoded")
        payload.text = "QUJD" + payload.text[4:]
        with pytest.raises(SignatureMismatch):
            check(serialize(root), pki)

    def test_added_attachment(self, signed, pki):
        root = parse_xml(signed)
        container = root.find(f"{E}AttachmentEncoded")
        extra = etree.fromstring(etree.tostring(container[0]))
        extra.find(f"{E}ContentId").text = "cid:extra"
        container.append(extra)
        manifest = root.find(f"{E}edXMLEnvelope/{E}edXMLBody/{E}edXMLManifest")
        reference = etree.fromstring(etree.tostring(manifest[0]))
        reference.find(f"{E}ContentId").text = "cid:extra"
        manifest.append(reference)
        with pytest.raises(SignatureMismatch):
            check(serialize(root), pki)

    def test_changed_signature_value(self, signed, pki):
        text = re.sub(
            r"<SignatureValue>(.)", lambda m: "<SignatureValue>" + ("A" if m.group(1) != "A" else "B"), signed.decode()
        )
        with pytest.raises(SignatureMismatch):
            check(text.encode(), pki)

    def test_inserted_trace_header_before_the_signed_ones(self, signed, pki):
        root = parse_xml(relay(signed))
        traces = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}TraceHeaderList")
        appended = traces[-1]
        traces.remove(appended)
        traces.insert(0, appended)
        with pytest.raises(SignatureCoverage, match="hops may only be appended"):
            check(serialize(root), pki)


class TestUnsigned:
    def test_stripped_signature_is_unsigned_and_refused_when_required(self, signed, pki):
        root = parse_xml(signed)
        root.find(f"{E}edXMLEnvelope/{E}edXMLHeader").remove(root.find(f".//{D}Signature"))
        data = serialize(root)
        with pytest.raises(SignatureMissing) as caught:
            check(data, pki)
        assert caught.value.code == "SIG201"
        assert check(data, pki, require_signature=False).signature.state is SignatureState.UNSIGNED

    def test_signed_message_without_a_trust_store_is_an_error_not_a_pass(self, signed):
        with pytest.raises(SignatureError, match="no trust store"):
            edxml.validate(signed, trust=None)


class TestCertificates:
    def test_untrusted_ca(self, pki):
        other_ca = create_ca("Somebody else's CA")
        pair = issue(other_ca, PROVINCE)
        data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))
        with pytest.raises(UntrustedCertificate, match="does not chain to a trusted authority"):
            check(data, pki)

    @pytest.mark.parametrize(
        ("start", "end", "match"),
        [(-400, -10, "expired on"), (10, 400, "not valid before")],
    )
    def test_expired_and_not_yet_valid(self, start, end, match):
        now = datetime.now(UTC)
        ca = create_ca("Long-lived CA", not_before=now - timedelta(days=1000), days=3000)
        trust = edxml.TrustStore.from_pem(ca.cert_pem)
        pair = issue(ca, PROVINCE, not_before=now + timedelta(days=start), not_after=now + timedelta(days=end))
        data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))
        with pytest.raises(CertificateExpired, match=match):
            edxml.validate(data, trust=trust)
        # the same signature checked at a time inside the validity period passes
        assert edxml.validate(data, trust=trust, at=now + timedelta(days=(start + end) // 2)).signature.valid

    def test_expired_ca(self, pki):
        now = datetime.now(UTC)
        old_ca = create_ca("Old CA", not_before=now - timedelta(days=800), days=700)
        pair = issue(old_ca, PROVINCE, not_before=now - timedelta(days=10), not_after=now + timedelta(days=10))
        data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))
        trust = edxml.TrustStore.from_pem(old_ca.cert_pem)
        with pytest.raises(CertificateExpired, match="issuing CA"):
            edxml.validate(data, trust=trust)

    def test_certificate_without_signing_usage(self, pki):
        pair = issue(pki.ca, PROVINCE, signing_usage=False)
        data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))
        with pytest.raises(CertificateUsage):
            check(data, pki)

    def test_we_refuse_to_sign_as_another_agency(self, pki):
        with pytest.raises(SignerMismatch, match="refusing to sign"):
            edxml.sign_message(full_document(), pki.identity(MINISTRY))

    def test_valid_certificate_of_another_agency_is_sender_spoofing(self, pki):
        """An attacker holding the ministry's real key signs a document claiming to come from the province."""
        root = edxml.build_tree(full_document())
        attacker_sign(root, pki.agencies[MINISTRY])
        with pytest.raises(SignerMismatch, match=f"certificate of {MINISTRY}.*From {PROVINCE}"):
            check(serialize(root), pki)

    def test_identity_refuses_a_certificate_of_another_key(self, pki):
        with pytest.raises(KeyMaterialError, match="does not belong"):
            edxml.SigningIdentity.from_pem(pki.agencies[PROVINCE].key_pem, pki.agencies[MINISTRY].cert_pem)


class TestAlgorithms:
    def test_sha1_is_refused_unless_allowed(self, pki):
        root = edxml.build_tree(full_document())
        attacker_sign(root, pki.agencies[PROVINCE], method=SignatureMethod.RSA_SHA1, digest=DigestAlgorithm.SHA1)
        data = serialize(root)
        with pytest.raises(WeakAlgorithm, match="SHA-1"):
            check(data, pki)
        assert check(data, pki, allow_sha1=True).signature.valid

    def test_certificate_signed_with_sha1_by_the_ca_still_chains(self, pki):
        # the chain check verifies signatures with whatever hash the CA used; the XML part is what must be strong
        pair = issue(pki.ca, PROVINCE, hash_algorithm=hashes.SHA256())
        data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))
        assert check(data, pki).signature.valid


class TestWrapping:
    def test_second_message_header(self, signed, pki):
        text = signed.decode()
        start = text.index("<edXML:MessageHeader")
        end = text.index("</edXML:MessageHeader>") + len("</edXML:MessageHeader>")
        forged = text[start:end].replace('Id="edxml-MessageHeader"', "").replace("Về việc triển khai", "Về việc giả")
        with pytest.raises(StructureError, match="at most one"):
            check((text[:end] + forged + text[end:]).encode(), pki)

    def test_signed_header_moved_into_the_signature_and_a_forged_one_in_its_place(self, signed, pki):
        root = parse_xml(signed)
        header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
        original = header.find(f"{E}MessageHeader")
        signature = header.find(f"{D}Signature")
        forged = etree.fromstring(etree.tostring(original))
        del forged.attrib["Id"]
        forged.find(f"{E}Subject").text = "Văn bản giả mạo"
        hiding_place = etree.SubElement(signature, f"{D}Object")
        header.replace(original, forged)
        hiding_place.append(original)
        with pytest.raises(SignatureCoverage):
            check(serialize(root), pki)

    def test_forged_header_reusing_the_signed_id(self, signed, pki):
        root = parse_xml(signed)
        header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
        original = header.find(f"{E}MessageHeader")
        forged = etree.fromstring(etree.tostring(original))
        forged.find(f"{E}Subject").text = "Văn bản giả mạo"
        etree.SubElement(header.find(f"{D}Signature"), f"{D}Object").append(original)
        header.insert(0, forged)
        with pytest.raises(SignatureCoverage, match="names 2 elements"):
            check(serialize(root), pki)

    def test_signature_that_leaves_attachments_out(self, pki):
        root = edxml.build_tree(full_document())
        attacker_sign(root, pki.agencies[PROVINCE], parts=("MessageHeader", "Bussiness", "TraceHeader", "edXMLBody"))
        with pytest.raises(SignatureCoverage, match="AttachmentEncoded is not covered"):
            check(serialize(root), pki)

    def test_reference_that_points_elsewhere(self, pki):
        root = edxml.build_tree(full_document())
        to = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}To")
        to.set("Id", "elsewhere")
        attacker_sign(root, pki.agencies[PROVINCE], extra_uris=("#elsewhere",))
        with pytest.raises(SignatureCoverage, match="#elsewhere"):
            check(serialize(root), pki)

    def test_whole_document_signature_survives_relays_and_nothing_else(self, pki):
        """The government's template signs URI="" (enveloped); axes append their hop after it."""
        root = edxml.build_tree(full_document())
        data = serialize(attacker_sign(root, pki.agencies[PROVINCE], whole_document=True))
        assert check(data, pki).signature.relay_hops == 0
        once, twice = relay(data), relay(relay(data), "000.00.00.H41")
        assert check(once, pki).signature.relay_hops == 1
        verdict = check(twice, pki).signature
        assert (verdict.valid, verdict.signed_hops, verdict.relay_hops) == (True, 1, 2)
        assert "2 TraceHeader(s) appended by relays" in verdict.detail
        with pytest.raises(SignatureMismatch, match="whole document"):
            check(twice.replace("Về việc triển khai".encode(), "Về việc hủy bỏ".encode()), pki)
        signed_hop = re.sub(
            rb"(<edXML:TraceHeader[^>]*>.*?<edXML:Timestamp>)2023", rb"\g<1>2022", twice, count=1, flags=re.S
        )
        assert signed_hop != twice
        with pytest.raises(SignatureMismatch):  # the sender's own hop is signed: it cannot change
            check(signed_hop, pki)


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
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        from gateway.edxml.certs import AGENCY_CODE_OID
        from gateway.pki import KeyPair

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
        from signxml import SignatureConfiguration, XMLVerifier

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
