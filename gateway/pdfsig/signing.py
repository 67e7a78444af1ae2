"""Signed PDFs for development, with pyHanko: what `edxml-gateway pki sign-pdf` does, and what
the demo and the tests send. Production PDFs are signed by the agency's signing software on
the signer's token; the gateway only checks them."""

from __future__ import annotations

import io
import logging

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.errors import KeyMaterialError, UsageError


def sample_pdf(text: str = "Van ban thu nghiem") -> bytes:
    """A one-page PDF saying ``text`` (ASCII: the standard Helvetica font has no Vietnamese)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    writer = PdfFileWriter()
    shown = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (" + shown + b") Tj ET"))
    font = writer.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Font"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
                generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
            }
        )
    )
    resources = generic.DictionaryObject(
        {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): font})}
    )
    writer.insert_page(PageObject(content, (0, 0, 595, 842), resources=resources))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sign_pdf(data: bytes, key_pem: bytes, cert_pem: bytes, *, field: str = "ChuKy1") -> bytes:
    """``data`` signed as a new revision (PAdES baseline, SHA-256) by the key of ``cert_pem``'s
    first certificate; the others (its issuing CA) go into the signature for the path."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise KeyMaterialError(f"the key or certificate cannot be read: {exc}") from None
    der = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
    private = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=der[0],
        signing_key=asn1_keys.PrivateKeyInfo.load(private),
        cert_registry=SimpleCertificateStore.from_certs(der[1:]),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        out = signers.sign_pdf(writer, signers.PdfSignatureMetadata(field_name=field), signer=signer)
    except Exception as exc:  # a file pyHanko cannot extend
        raise UsageError(f"the PDF cannot be signed: {type(exc).__name__}: {exc}") from None
    return out.getvalue()


def alter_after_signing(signed: bytes, text: str = "HUY BO") -> bytes:
    """A signed PDF with a new revision that writes ``text`` over its page: what a forger does
    to a signed document, and what a recipient must see (the signature no longer covers it)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    shown = text.encode("ascii", "replace")
    page["/Contents"] = writer.add_object(
        generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 700 Td (" + shown + b") Tj ET")
    )
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
