"""Signatures inside PDF attachments (issue 19), checked by pyHanko in the bounded child process:
a valid signature along a three-level path, a file changed after signing, a byte flipped, an
untrusted signer, a revoked one, and PDFs that are not PDFs or are built to exhaust a reader."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from gateway import edxml, pki_folder
from gateway.daemon.pdfcheck import is_pdf, weigh
from gateway.pdfsig.signing import alter_after_signing, sample_pdf, sign_pdf
from gateway.pdfsig.worker import PdfInspector
from gateway.pki import Revoked, make_crl
from tests.messages import DEPARTMENT, PROVINCE


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pdf-pki")
    pki_folder.init_dir(folder, crl_url="http://127.0.0.1:9")
    pki_folder.issue_to_dir(folder, PROVINCE, "UBND tỉnh Tiền Giang")
    pki_folder.issue_to_dir(folder, DEPARTMENT, "Sở Nội vụ", use_ec=True)
    return folder


@pytest.fixture(scope="module")
def inspector() -> Iterator[PdfInspector]:
    made = PdfInspector(memory_bytes=768 * 1024 * 1024, timeout=20)
    yield made
    made.close()


def der(path: Path) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(path.read_bytes())]


def signed_by(pki: Path, code: str, data: bytes | None = None, field: str = "ChuKy1") -> bytes:
    return sign_pdf(
        data or sample_pdf("Quyet dinh 12/QD-UBND"),
        (pki / f"{code}.key").read_bytes(),
        (pki / f"{code}.pem").read_bytes(),
        field=field,
    )


def check(inspector: PdfInspector, pki: Path, data: bytes, *, crls=(), at=None):
    return inspector.inspect_now(data, anchors=der(pki / "ca.pem"), crls=crls, at=at or datetime.now(UTC))


def fresh_crls(pki: Path, revoked: list[Revoked] = ()) -> list[bytes]:
    return [make_crl(pki_folder.load_ca(pki)), make_crl(pki_folder.load_issuer(pki), revoked)]


def test_a_signed_pdf_is_valid_and_names_its_signer(inspector, pki):
    report = check(inspector, pki, signed_by(pki, PROVINCE), crls=fresh_crls(pki))
    (signature,) = report.signatures
    assert report.valid and signature.valid
    assert (signature.intact, signature.covers_whole_file, signature.trusted, signature.revoked) == (
        True,
        True,
        True,
        False,
    )
    assert signature.agency == PROVINCE and signature.signer == "UBND tỉnh Tiền Giang"
    assert signature.signed_at is not None and signature.detail == "valid" and signature.revocation == "good"
    assert set(report.crl_urls) == {"http://127.0.0.1:9/intermediate.crl", "http://127.0.0.1:9/root.crl"}
    # each address with the CA whose CRL it is: a CRL served there is kept only with its signature
    issuers = dict(report.crl_issuers)
    assert issuers["http://127.0.0.1:9/intermediate.crl"] == der(pki / "intermediate.pem")[0]
    assert issuers["http://127.0.0.1:9/root.crl"] == der(pki / "ca.pem")[0]


def test_signer_and_seal_two_signatures_both_judged(inspector, pki):
    twice = signed_by(pki, DEPARTMENT, signed_by(pki, PROVINCE), field="ConDau")
    report = check(inspector, pki, twice, crls=fresh_crls(pki))
    assert [s.field for s in report.signatures] == ["ChuKy1", "ConDau"]
    # the first no longer covers the whole file (the seal came after it): said, and still valid,
    # since what came after is a signature (found in review: it was judged invalid)
    first, seal = report.signatures
    assert first.intact and not first.covers_whole_file and first.valid and seal.valid
    assert "later revisions only add signatures" in first.detail
    assert report.valid


def test_a_pdf_changed_after_signing_is_reported_as_such(inspector, pki):
    report = check(inspector, pki, alter_after_signing(signed_by(pki, PROVINCE)), crls=fresh_crls(pki))
    (signature,) = report.signatures
    assert signature.intact and not signature.covers_whole_file and not signature.valid
    assert "changed after it was signed" in signature.detail
    assert report.refusal("a.pdf") is not None


def with_text_field(pdf: bytes, name: str, value: str) -> bytes:
    """``pdf`` with a form text field on its page, as a form-based template carries one."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    field = generic.DictionaryObject(
        {
            generic.pdf_name("/FT"): generic.pdf_name("/Tx"),
            generic.pdf_name("/T"): generic.TextStringObject(name),
            generic.pdf_name("/V"): generic.TextStringObject(value),
            generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Widget"),
            generic.pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in (72, 700, 300, 720)]),
            generic.pdf_name("/F"): generic.NumberObject(4),
            generic.pdf_name("/P"): page_ref,
        }
    )
    reference = writer.add_object(field)
    page["/Annots"] = generic.ArrayObject([reference])
    writer.update_container(page)
    writer.root["/AcroForm"] = generic.DictionaryObject({generic.pdf_name("/Fields"): generic.ArrayObject([reference])})
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def filled_in(pdf: bytes, value: str) -> bytes:
    """A new revision that gives every text field ``value``: allowed by PDF's form filling."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    for reference in writer.root["/AcroForm"]["/Fields"]:
        field = reference.get_object()
        if field.get("/FT") == "/Tx":
            field["/V"] = generic.TextStringObject(value)
            writer.update_container(field)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_form_field_filled_in_after_signing_is_not_valid(inspector, pki):
    """Found in review: pyHanko allows form filling after an approval signature, and the
    verdict said valid ("later revisions only add signatures or fill in fields"): a field of
    an official document filled in after signing changes what the signed page shows."""
    signed = signed_by(pki, PROVINCE, with_text_field(sample_pdf("Quyet dinh"), "SoVanBan", "12/QD-UBND"))
    (before,) = check(inspector, pki, signed, crls=fresh_crls(pki)).signatures
    assert before.valid and before.detail == "valid"
    report = check(inspector, pki, filled_in(signed, "HUY BO"), crls=fresh_crls(pki))
    (after,) = report.signatures
    assert after.intact and after.trusted and not after.valid
    assert after.detail == "form fields were filled in after it was signed: SoVanBan"
    assert report.refusal("qd.pdf") is not None
    # a seal signed after it fills only its own field: both stay valid
    sealed = check(inspector, pki, signed_by(pki, DEPARTMENT, signed, field="ConDau"), crls=fresh_crls(pki))
    assert sealed.valid


def test_a_flipped_byte_in_the_signed_range_is_not_intact(inspector, pki):
    data = bytearray(signed_by(pki, PROVINCE))
    data[data.find(b"Quyet")] = ord("X")
    (signature,) = check(inspector, pki, bytes(data), crls=fresh_crls(pki)).signatures
    assert not signature.intact and not signature.valid


def test_a_signer_from_another_hierarchy_is_not_trusted(inspector, pki, tmp_path):
    other = tmp_path / "other"
    pki_folder.init_dir(other)
    pki_folder.issue_to_dir(other, PROVINCE)
    (signature,) = check(inspector, pki, signed_by(other, PROVINCE), crls=fresh_crls(pki)).signatures
    assert signature.intact and not signature.trusted and not signature.valid
    assert "does not chain" in signature.detail


def test_a_revoked_signer_is_revoked_from_the_moment_of_revocation(inspector, pki):
    serial = x509.load_pem_x509_certificates((pki / f"{PROVINCE}.pem").read_bytes())[0].serial_number
    revoked_at = datetime.now(UTC) - timedelta(minutes=1)
    crls = fresh_crls(pki, [Revoked(serial, revoked_at)])
    data = signed_by(pki, PROVINCE)
    (now,) = check(inspector, pki, data, crls=crls).signatures
    assert now.revoked and not now.valid and "revoked" in now.detail
    (before,) = check(inspector, pki, data, crls=crls, at=revoked_at - timedelta(seconds=30)).signatures
    assert not before.revoked


def test_without_its_crls_hard_says_unknown_and_worth_asking_again_soft_says_valid(inspector, pki):
    report = check(inspector, pki, signed_by(pki, PROVINCE))
    assert report.valid
    # the whole path's CRLs, the issuing CA's own included (found in review: only the signer's)
    assert set(report.signatures[0].crl_urls) == {"http://127.0.0.1:9/intermediate.crl", "http://127.0.0.1:9/root.crl"}
    assert weigh(report, set(), hard=False).valid
    hard = weigh(report, {"http://127.0.0.1:9/intermediate.crl"}, hard=True)
    assert not hard.valid and hard.transient
    assert "revocation status unknown" in hard.signatures[0].detail and "root.crl" in hard.signatures[0].detail


def test_a_path_whose_crl_is_only_at_an_ldap_address_is_unknown_under_hard(inspector, tmp_path):
    """Found in review: "hard" weighed only the addresses the gateway fetches (http), so a path
    naming its CRLs at ldap: alone counted as checked, where an XML signature's is unknown."""
    ldap = tmp_path / "ldap"
    pki_folder.init_dir(ldap, crl_url="ldap://ldap.ca.example/cn=CRL")
    pki_folder.issue_to_dir(ldap, PROVINCE, "UBND tỉnh Tiền Giang")
    report = check(inspector, ldap, signed_by(ldap, PROVINCE))
    (signature,) = report.signatures
    assert signature.valid and signature.crl_urls == () and signature.revocation == "unknown"
    assert weigh(report, set(), hard=False).valid
    hard = weigh(report, set(), hard=True)
    assert not hard.valid and not hard.transient  # no fetch can bring it: refused at once under "require"
    assert hard.signatures[0].detail.startswith("revocation status unknown: ")
    assert "revocation_detail" not in hard.signatures[0].as_json()


def test_an_untrusted_signer_names_no_crl_for_the_gateway_to_fetch(inspector, pki, tmp_path):
    """A certificate anyone can make must not send the gateway to addresses of its choosing
    (found in review: every certificate's CRL addresses were fetched)."""
    other = tmp_path / "other"
    pki_folder.init_dir(other, crl_url="http://169.254.169.254/latest")
    pki_folder.issue_to_dir(other, PROVINCE)
    report = check(inspector, pki, signed_by(other, PROVINCE))
    assert report.crl_urls == () and report.signatures[0].crl_urls == ()


def test_a_pdf_is_known_by_its_content_too():
    named = edxml.Attachment("a", "vb", sample_pdf(), content_type="application/octet-stream")
    assert is_pdf(named)
    assert not is_pdf(edxml.Attachment("b", "notes", b"plain text", content_type="text/plain"))


def test_a_reader_that_gives_up_makes_require_wait_until_the_deadline(pki):
    """Time or memory running out is no verdict on the PDF: under "require" the document waits
    and is asked again, and is refused only at the retry deadline (found in review)."""
    import asyncio
    import dataclasses

    from gateway import logs
    from gateway.daemon.examine import Examined
    from gateway.daemon.pdfcheck import PdfChecks
    from gateway.daemon.revoking import Wait
    from gateway.edxml.revocation import RevocationPolicy
    from gateway.pdfsig.verdict import PdfPolicy
    from gateway.revocation import Revocation
    from tests.messages import full_document

    trust = edxml.TrustStore.from_pem((pki / "ca.pem").read_bytes())
    checks = PdfChecks(PdfPolicy.REQUIRE, trust, Revocation(RevocationPolicy.OFF, None), logs.get("test"))
    checks.inspector.close()
    checks.inspector = PdfInspector(timeout=0.001)
    pdf = edxml.Attachment("p", "a.pdf", signed_by(pki, PROVINCE), content_type="application/pdf")
    examined = Examined(b"", dataclasses.replace(full_document(), attachments=(pdf,)), None)
    try:
        waiting = asyncio.run(checks.examine(examined, None, logs.get("test"), deadline_passed=False))
        assert isinstance(waiting, Wait) and "took longer than" in waiting.reason
        refused = asyncio.run(checks.examine(examined, None, logs.get("test"), deadline_passed=True))
        assert isinstance(refused, Examined) and "took longer than" in (refused.refusal or "")
    finally:
        checks.close()


def test_a_documents_pdfs_together_have_a_budget_and_what_is_past_it_is_not_read(pki):
    """Found in review: every PDF of a document went through the reader one after the other,
    each up to its deadline (and once more on a fresh reader), while the deliveries of the
    round waited: a document of many PDFs built to run to the deadline held them for hours."""
    import asyncio
    import dataclasses

    from gateway import logs
    from gateway.daemon.examine import Examined
    from gateway.daemon.pdfcheck import DOCUMENT_PDF_SECONDS, PdfChecks
    from gateway.edxml.revocation import RevocationPolicy
    from gateway.pdfsig.verdict import PdfPolicy
    from gateway.pdfsig.worker import TIMEOUT_SECONDS
    from gateway.revocation import Revocation
    from tests.messages import full_document

    assert DOCUMENT_PDF_SECONDS == 2 * TIMEOUT_SECONDS
    trust = edxml.TrustStore.from_pem((pki / "ca.pem").read_bytes())
    checks = PdfChecks(PdfPolicy.REPORT, trust, Revocation(RevocationPolicy.OFF, None), logs.get("test"))
    checks.inspector.close()
    checks.inspector = PdfInspector(timeout=0.001)  # every PDF runs to the reader's deadline
    checks.document_seconds = 0.001  # as if the first one had used the document's whole time
    pdfs = tuple(
        edxml.Attachment(f"p{i}", f"{i}.pdf", signed_by(pki, PROVINCE), content_type="application/pdf")
        for i in range(5)
    )
    examined = Examined(b"", dataclasses.replace(full_document(), attachments=pdfs), None)
    try:
        judged = asyncio.run(checks.examine(examined, None, logs.get("test"), deadline_passed=False))
    finally:
        checks.close()
    first, *rest = judged.pdf
    assert "took longer than" in first.problem
    assert all(
        r.transient and r.problem == "not read: this document's PDFs took more than 0.001 s together" for r in rest
    )


def test_letting_an_idle_reader_go_never_waits_for_one_at_work(pki):
    hurried = PdfInspector()
    try:
        check(hurried, pki, signed_by(pki, PROVINCE))
        with hurried._lock:  # a PDF being read right now, from the loop's point of view
            hurried.stop_if_idle(0)  # returns at once instead of waiting on the lock
            assert hurried._process is not None
        hurried.stop_if_idle(0)
        assert hurried._process is None
    finally:
        hurried.close()


def test_an_unsigned_pdf_is_reported_unsigned(inspector, pki):
    report = check(inspector, pki, sample_pdf())
    assert report.signatures == () and report.problem is None and not report.valid
    assert report.refusal("a.pdf") == "a.pdf: the PDF is not signed"


def nested(depth: int) -> bytes:
    """A well-formed PDF whose catalog is ``depth`` arrays one inside the other."""
    head = b"%PDF-1.7\n"
    body = b"1 0 obj\n" + b"[" * depth + b"]" * depth + b"\nendobj\n"
    xref = b"xref\n0 2\n0000000000 65535 f \n" + f"{len(head):010d} 00000 n \n".encode()
    trailer = b"trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n" + str(len(head) + len(body)).encode()
    return head + body + xref + trailer + b"\n%%EOF\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<html>not a pdf</html>", "not a PDF"),
        (b"%PDF-1.7\n" + b"\x00" * 5000, "cannot be read"),
        (nested(200_000), "nests its objects too deep"),
        (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", "no startxref"),
    ],
    ids=["html", "garbage after the header", "200,000 nested arrays", "no cross-reference pointer"],
)
def test_what_is_not_a_readable_pdf_gets_a_reason(inspector, pki, data, expected):
    report = check(inspector, pki, data)
    assert report.problem is not None and expected in report.problem, report.problem


def bomb(pki: Path, inflated_mib: int) -> bytes:
    """A signed PDF, then a revision whose cross-reference stream (which every reader must
    decode to open the file) inflates from about a kilobyte per MiB to ``inflated_mib`` MiB."""
    signed = signed_by(pki, PROVINCE)
    packer = zlib.compressobj(1)
    chunk = b"\x00" * 2**20
    stream = b"".join(packer.compress(chunk) for _ in range(inflated_mib)) + packer.flush()
    start = signed.rfind(b"startxref")
    previous = int(signed[start + 9 :].split()[0])
    offset = len(signed) + 1
    revision = (
        b"\n"
        + b"99 0 obj\n<< /Type /XRef /Size 100 /W [1 4 2] /Index [99 1] /Root 1 0 R /Prev "
        + str(previous).encode()
        + b" /Filter /FlateDecode /Length "
        + str(len(stream)).encode()
        + b" >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\nstartxref\n"
        + str(offset).encode()
        + b"\n%%EOF\n"
    )
    return signed + revision


def test_a_pdf_bomb_gets_a_verdict_and_the_next_pdf_is_read(inspector, pki):
    report = check(inspector, pki, bomb(pki, 1024))  # 1 GiB from about 1 MB
    assert report.problem is not None and "cannot be read" in report.problem, report
    assert check(inspector, pki, signed_by(pki, PROVINCE)).valid


def test_a_reader_out_of_memory_is_a_verdict_not_the_gateways_end(pki):
    """Whatever exhausts the child's memory (here: a cap too small to read any PDF) ends as a
    verdict; the gateway's process never holds the PDF's inflated objects."""
    starved = PdfInspector(memory_bytes=64 * 1024 * 1024, timeout=20)
    try:
        report = check(starved, pki, signed_by(pki, PROVINCE))
        assert report.problem is not None and ("64 MiB" in report.problem), report.problem
    finally:
        starved.close()


def test_a_pdf_that_takes_too_long_is_given_up_and_the_next_one_is_read(pki):
    hurried = PdfInspector(timeout=0.001)
    try:
        report = check(hurried, pki, signed_by(pki, PROVINCE))
        assert report.problem is not None and "took longer than" in report.problem
    finally:
        hurried.close()


def test_a_signature_without_its_signers_certificate_is_its_own_verdict_not_the_pdfs(inspector, pki):
    """Its CMS without the certificates it carried (the byte range untouched): that signature
    says why, the other is judged as usual (found in review: the PDF as a whole became an
    AttributeError, and the other signature's verdict was lost)."""
    from asn1crypto import cms

    data = bytearray(signed_by(pki, PROVINCE, signed_by(pki, DEPARTMENT), field="ChuKy2"))
    start = data.rfind(b"/Contents <") + len(b"/Contents <")
    end = data.find(b">", start)
    info = cms.ContentInfo.load(bytes.fromhex(data[start:end].decode()), strict=False)
    info["content"]["certificates"] = cms.CertificateSet([])
    blob = info.dump(force=True).hex().encode()
    data[start:end] = blob.ljust(end - start, b"0")
    report = check(inspector, pki, bytes(data), crls=fresh_crls(pki))
    assert report.problem is None, report.problem
    assert sorted(signature.valid for signature in report.signatures) == [False, True]
    (broken,) = (signature for signature in report.signatures if not signature.valid)
    assert "no readable certificate" in broken.detail or "cannot be checked" in broken.detail, broken.detail
