"""A PDF's signer is judged against the CRLs current when the axis accepted the document, as
the XML's signer is: one revoked before then stays revoked after its CRL has expired (found in
review: the PDF was judged with CRLs current now only, and so without any, and passed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from gateway import edxml, logs, pki_folder
from gateway.daemon.pdfcheck import PdfChecks
from gateway.pdfsig.signing import sample_pdf, sign_pdf
from gateway.pdfsig.verdict import PdfPolicy
from gateway.pki import Revoked, make_crl
from gateway.revocation import CrlCache, Revocation, RevocationPolicy
from tests.messages import PROVINCE
from tests.test_crl_cache import hostile_server


def test_a_pdf_signer_revoked_before_acceptance_stays_revoked_once_its_crl_has_expired(tmp_path: Path):
    now = datetime.now(UTC)
    routes: dict[str, bytes] = {}
    with hostile_server(routes) as base:
        folder = tmp_path / "pki"
        pki_folder.init_dir(folder, crl_url=base)
        pki_folder.issue_to_dir(folder, PROVINCE, "UBND tỉnh Tiền Giang")
        serial = x509.load_pem_x509_certificates((folder / f"{PROVINCE}.pem").read_bytes())[0].serial_number
        # certificates are valid from five minutes before they are issued: the story fits in them
        window = {"this_update": now - timedelta(seconds=270), "next_update": now - timedelta(seconds=60)}
        routes["/root.crl"] = make_crl(pki_folder.load_ca(folder), **window)
        routes["/intermediate.crl"] = make_crl(
            pki_folder.load_issuer(folder), [Revoked(serial, now - timedelta(seconds=240))], **window
        )
        signed = sign_pdf(
            sample_pdf("Quyet dinh 12/QD-UBND"),
            (folder / f"{PROVINCE}.key").read_bytes(),
            (folder / f"{PROVINCE}.pem").read_bytes(),
            field="ChuKy1",
        )
        trust = edxml.TrustStore.from_pem((folder / "ca.pem").read_bytes(), (folder / "intermediate.pem").read_bytes())
        cache = CrlCache(tmp_path / "crls", log=logs.get("test"))
        checks = PdfChecks(PdfPolicy.REQUIRE, trust, Revocation(RevocationPolicy.SOFT, cache), logs.get("test"))

        async def judged(at: datetime):
            try:
                return await checks._judge(signed, at)
            finally:
                await cache.close()

        try:
            accepted = asyncio.run(judged(now - timedelta(seconds=180)))  # revoked, its CRL then current
        finally:
            checks.close()
    (signature,) = accepted.signatures
    assert signature.revoked and not signature.valid, signature.detail
