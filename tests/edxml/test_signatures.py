"""Signatures: relay-safe, tamper-evident, bound to the sender's agency, refusing attacks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod

from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.signature import SignatureState
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import (
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
from tests.edxml.forgery import (
    attacker_sign,
    check,
    relay,
)
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

E = f"{{{EDXML}}}"
D = f"{{{DSIG}}}"


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))


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
