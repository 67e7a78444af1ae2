"""Detached XMLDSig over parts referenced by Id, each canonicalised in place (exclusive c14n).

Why not signxml for this layout: for every Reference, signxml serialises and re-parses the
whole document before canonicalising the part it needs. With five references that is five
copies of the message: most of the CPU of a 5 KB document, and about 140 MB of memory for a
20 MB attachment. Exclusive c14n of an element does not depend on its ancestors, so each
part can be canonicalised where it stands: one pass over the bytes of each part, nothing
else copied. lxml (libxml2) does the canonicalisation, cryptography the signature.

This module signs exactly one layout (the one signature.py describes) and verifies the
signatures of that shape: SignedInfo and every Reference with exclusive c14n and no
InclusiveNamespaces, references by ``#Id`` with that one transform. Anything else (an
enveloped signature, other transforms, a PrefixList) is left to signxml by the caller:
:func:`simple_layout` says which. Algorithm policy (SHA-1, strong methods), certificates,
and which parts must be covered are decided by signature.py, not here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.edxml import ns
from gateway.edxml.lift import NOT_LIFTED, Lifted
from gateway.errors import SignatureCoverage, SignatureError, SignatureMismatch

EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value

# URIs as signxml names them; the hash each one uses
DIGESTS = {
    DigestAlgorithm.SHA1.value: "sha1",
    DigestAlgorithm.SHA256.value: "sha256",
    DigestAlgorithm.SHA384.value: "sha384",
    DigestAlgorithm.SHA512.value: "sha512",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
METHODS = {  # signature method URI → (key kind, hash)
    SignatureMethod.RSA_SHA1.value: ("rsa", "sha1"),
    SignatureMethod.RSA_SHA256.value: ("rsa", "sha256"),
    SignatureMethod.RSA_SHA384.value: ("rsa", "sha384"),
    SignatureMethod.RSA_SHA512.value: ("rsa", "sha512"),
    SignatureMethod.ECDSA_SHA1.value: ("ec", "sha1"),
    SignatureMethod.ECDSA_SHA256.value: ("ec", "sha256"),
    SignatureMethod.ECDSA_SHA384.value: ("ec", "sha384"),
    SignatureMethod.ECDSA_SHA512.value: ("ec", "sha512"),
}


def _ds(name: str) -> str:
    return f"{{{ns.DSIG}}}{name}"


def c14n(element: etree._Element) -> bytes:
    """Exclusive c14n 1.0 of ``element`` and its subtree, without comments, where it stands."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def digest(element: etree._Element, hash_name: str = "sha256", lifted: Lifted = NOT_LIFTED) -> bytes:
    """The digest of a part; a lifted run inside it is hashed from where it stands, in pieces."""
    hasher = hashlib.new(hash_name)
    lifted.feed(hasher.update, c14n(element))
    return hasher.digest()


# --- signing -----------------------------------------------------------------------------------------


def sign(
    parts: Sequence[tuple[str, etree._Element]],
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    lifted: Lifted = NOT_LIFTED,
) -> etree._Element:
    """A detached ``<Signature xmlns="…xmldsig#">`` over ``parts`` (Id, element), SHA-256.

    The parts must already carry their Id attributes; the signature is returned, not placed.
    """
    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    method = SignatureMethod.ECDSA_SHA256 if is_ec else SignatureMethod.RSA_SHA256
    signature = etree.Element(_ds("Signature"), nsmap={None: ns.DSIG})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=method.value)
    for id_value, element in parts:
        reference = etree.SubElement(signed_info, _ds("Reference"), URI=f"#{id_value}")
        transforms = etree.SubElement(reference, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=DigestAlgorithm.SHA256.value)
        value = base64.b64encode(digest(element, "sha256", lifted)).decode("ascii")
        etree.SubElement(reference, _ds("DigestValue")).text = value
    data = c14n(signed_info)
    if is_ec:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        size = (key.curve.key_size + 7) // 8
        value = r.to_bytes(size, "big") + s.to_bytes(size, "big")  # XMLDSig wants r‖s, not DER
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, _ds("SignatureValue")).text = base64.b64encode(value).decode("ascii")
    x509_data = etree.SubElement(etree.SubElement(signature, _ds("KeyInfo")), _ds("X509Data"))
    for certificate in certificates:  # the signer's first
        der = certificate.public_bytes(serialization.Encoding.DER)
        etree.SubElement(x509_data, _ds("X509Certificate")).text = base64.b64encode(der).decode("ascii")
    return signature


# --- verifying ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    id_value: str
    hash_name: str
    expected: bytes


def simple_layout(signature: etree._Element) -> bool:
    """True when this module can verify ``signature`` exactly as XMLDSig defines it."""
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        return False
    method = signed_info.find(_ds("CanonicalizationMethod"))
    if method is None or method.get("Algorithm") != EXC_C14N or len(method):
        return False
    references = signed_info.findall(_ds("Reference"))
    if not references:
        return False
    for reference in references:
        uri = reference.get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2:
            return False
        transforms = reference.find(_ds("Transforms"))
        # Without Transforms, XMLDSig canonicalises a same-document reference with inclusive
        # c14n: not this module's business.
        if transforms is None or len(transforms) != 1:
            return False
        transform = transforms[0]
        if transform.tag != _ds("Transform") or transform.get("Algorithm") != EXC_C14N or len(transform):
            return False
    return True


def verify(
    root: etree._Element,
    signature: etree._Element,
    certificate: x509.Certificate,
    *,
    signature_methods: frozenset[str],
    digest_methods: frozenset[str],
    id_attribute: str = "Id",
    lifted: Lifted = NOT_LIFTED,
) -> None:
    """Check the signature value and every digest; raise SignatureMismatch or SignatureError.

    Call only when :func:`simple_layout` is true. Each ``#Id`` must name exactly one element
    of ``root`` (SignatureCoverage otherwise): a repeated Id is how wrapping attacks begin.
    """
    signed_info = signature.find(_ds("SignedInfo"))
    assert signed_info is not None
    method_element = signed_info.find(_ds("SignatureMethod"))
    method_uri = "" if method_element is None else method_element.get("Algorithm", "")
    if method_uri not in signature_methods or method_uri not in METHODS:
        raise SignatureError(f"signature method {method_uri!r} is not accepted")
    references = [_reference(element, digest_methods) for element in signed_info.iterfind(_ds("Reference"))]
    holders = _holders(root, {r.id_value for r in references}, id_attribute)
    for reference in references:
        found = holders.get(reference.id_value, [])
        if len(found) != 1:
            raise SignatureCoverage(f"Reference #{reference.id_value} names {len(found)} elements, not one")
        actual = digest(found[0], reference.hash_name, lifted)
        if not hmac.compare_digest(actual, reference.expected):
            raise SignatureMismatch(f"the digest of #{reference.id_value} does not match: it changed after signing")
    value_element = signature.find(_ds("SignatureValue"))
    try:
        value = base64.b64decode("".join((value_element.text or "").split()), validate=True)
    except (AttributeError, ValueError, binascii.Error):
        raise SignatureError("SignatureValue is missing or not base64") from None
    _check_value(certificate.public_key(), method_uri, value, c14n(signed_info))


def _reference(element: etree._Element, digest_methods: frozenset[str]) -> Reference:
    method = element.find(_ds("DigestMethod"))
    uri = "" if method is None else method.get("Algorithm", "")
    if uri not in digest_methods or uri not in DIGESTS:
        raise SignatureError(f"digest method {uri!r} is not accepted")
    value = element.find(_ds("DigestValue"))
    try:
        expected = base64.b64decode("".join((value.text or "").split()), validate=True)
    except (AttributeError, ValueError, binascii.Error):
        raise SignatureError("a DigestValue is missing or not base64") from None
    return Reference((element.get("URI") or "")[1:], DIGESTS[uri], expected)


def _holders(root: etree._Element, wanted: set[str], id_attribute: str) -> dict[str, list[etree._Element]]:
    """Every element carrying one of the wanted Ids (in any namespace), in one pass."""
    found: dict[str, list[etree._Element]] = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.attrib:
            continue
        for name, value in element.attrib.items():
            if value in wanted and etree.QName(name).localname == id_attribute:
                found.setdefault(value, []).append(element)
    return found


def _check_value(public_key: object, method_uri: str, value: bytes, data: bytes) -> None:
    kind, hash_name = METHODS[method_uri]
    algorithm = _HASHES[hash_name]()
    try:
        if kind == "rsa":
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise SignatureMismatch("an RSA signature method with a key that is not RSA")
            public_key.verify(value, data, padding.PKCS1v15(), algorithm)
        else:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise SignatureMismatch("an ECDSA signature method with a key that is not EC")
            size = (public_key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise SignatureMismatch(f"an ECDSA SignatureValue of {len(value)} bytes for a {size * 8}-bit curve")
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except InvalidSignature:
        raise SignatureMismatch("the signature value does not match SignedInfo") from None
