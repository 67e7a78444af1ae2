"""XMLDSig made and checked in place: parts canonicalised where they stand, never copied.

Why not signxml for this layout: for every Reference, signxml serialises and re-parses the
whole document before canonicalising the part it needs. With five references that is five
copies of the message: most of the CPU of a 5 KB document, and about 140 MB of memory for a
20 MB attachment. Exclusive c14n of an element does not depend on its ancestors, so each
part can be canonicalised where it stands: one pass over the bytes of each part, nothing
else copied. lxml (libxml2) does the canonicalisation, cryptography the signature.

This module signs exactly one layout (the one signature.py describes): detached, one
Reference per part by ``#Id``, exclusive c14n. It verifies every shape that
gateway.edxml.signedinfo accepts (that module decides which transforms may appear), the
whole-document (``URI=""``, enveloped) signature of the government's template included: the
Signature is taken out for a moment instead of the document being copied. Algorithm policy,
certificates and which parts must be covered are decided by signature.py, not here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from gateway.edxml import ns
from gateway.edxml.lift import NOT_LIFTED, Lifted
from gateway.edxml.signedinfo import Plan, Reference
from gateway.errors import SignatureCoverage, SignatureMismatch

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

MAX_RELAY_HOPS = 4  # hops a whole-document signature may have had appended after it: axis, province, …


def find_signer(plan: Plan, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The offered certificate whose key made the SignatureValue, in whatever order KeyInfo lists them.

    KeyInfo says nothing binding about which certificate is the signer's: the key decides.
    Raises SignatureMismatch when no offered key verifies SignedInfo.
    """
    data = plan.signed_bytes()
    failure: SignatureMismatch | None = None
    for certificate in certificates:
        try:
            _check_value(certificate.public_key(), plan.method_uri, plan.value, data)
        except SignatureMismatch as exc:
            failure = failure or exc
        else:
            return certificate
    if len(certificates) > 1:
        raise SignatureMismatch(
            f"the signature value does not match SignedInfo under any of the {len(certificates)} offered certificates"
        )
    raise failure or SignatureMismatch("no certificate is offered to check the signature value with")


def check_references(
    root: etree._Element,
    signature: etree._Element,
    plan: Plan,
    *,
    lifted: Lifted = NOT_LIFTED,
    hops: Sequence[etree._Element] = (),
    hop_list: etree._Element | None = None,
    id_attribute: str = "Id",
) -> int:
    """Check every digest of ``plan``; raise SignatureMismatch or SignatureCoverage.

    Each ``#Id`` must name exactly one element of ``root``: a repeated Id is how wrapping
    attacks begin. A whole-document Reference is checked as the signer signed it: when the
    document as it is does not match, the last hops of ``hops`` (the TraceHeaders, in order;
    ``hop_list`` holds them) are left out one more at a time, up to MAX_RELAY_HOPS, since
    relays append theirs after the signature was made. Returns how many were left out.
    """
    by_id = [reference for reference in plan.references if not reference.whole_document]
    holders = _holders(root, {reference.id_value for reference in by_id}, id_attribute)
    for reference in by_id:
        found = holders.get(reference.id_value, [])
        if len(found) != 1:
            raise SignatureCoverage(f"Reference #{reference.id_value} names {len(found)} elements, not one")
        element = found[0]
        inside = reference.enveloped and any(ancestor is element for ancestor in signature.iterancestors())
        with _detached([signature] if inside else []):
            actual = _hash(reference, reference.canonicalization.apply(element), lifted)
        if not hmac.compare_digest(actual, reference.expected):
            raise SignatureMismatch(f"the digest of #{reference.id_value} does not match: it changed after signing")
    whole = [reference for reference in plan.references if reference.whole_document]
    if len(whole) > 1:
        raise SignatureCoverage("SignedInfo references the whole document more than once")
    if not whole:
        return 0
    return _check_whole_document(root, signature, whole[0], lifted, list(hops), hop_list)


def _check_whole_document(
    root: etree._Element,
    signature: etree._Element,
    reference: Reference,
    lifted: Lifted,
    hops: list[etree._Element],
    hop_list: etree._Element | None,
) -> int:
    tree = root.getroottree()
    with _detached([signature]):  # the enveloped-signature transform: the text around it stays
        if hmac.compare_digest(_hash(reference, reference.canonicalization.apply(tree), lifted), reference.expected):
            return 0
        for left_out, block, text in _relay_attempts(hops, hop_list):
            with _detached(block, text=text):
                actual = _hash(reference, reference.canonicalization.apply(tree), lifted)
            if hmac.compare_digest(actual, reference.expected):
                return left_out
    raise SignatureMismatch(
        "the digest of the whole document does not match: it changed after signing"
        + (" (also without the TraceHeaders relays appended)" if hops else "")
    )


def _relay_attempts(
    hops: list[etree._Element], hop_list: etree._Element | None
) -> Iterator[tuple[int, list[etree._Element], str | None]]:
    """(hops left out, the elements taken out for that, the text left where they stood).

    The last 1, 2, … MAX_RELAY_HOPS hops, when they stand together at the end of their list;
    all of them also as the whole list, when a relay created it. What stood at that place
    before the relays came is one of the whitespace runs now around the block: the text
    before it when relays append as lxml does (no whitespace), a hop's tail when they
    pretty-print, either one per relay on a path that mixes them. The schema lets nothing
    but whitespace stand between hops.
    """
    for left_out in range(1, min(len(hops), MAX_RELAY_HOPS) + 1):
        blocks = [hops[len(hops) - left_out :]]
        if hop_list is not None and left_out == len(hops) and len(hop_list) == left_out:
            blocks.append([hop_list])  # the list itself came with the first relay
        for block in blocks:
            if not _side_by_side(block):
                continue
            first = block[0]
            previous = first.getprevious()
            before = (first.getparent().text if previous is None else previous.tail) or ""  # type: ignore[union-attr]
            candidates = [before + "".join(e.tail or "" for e in block), before, *(e.tail or "" for e in block)]
            for text in dict.fromkeys(candidates):
                yield left_out, block, text


def _side_by_side(elements: list[etree._Element]) -> bool:
    return all(a.getnext() is b for a, b in itertools.pairwise(elements))


@contextmanager
def _detached(elements: Sequence[etree._Element], *, text: str | bool | None = True) -> Iterator[None]:
    """Take ``elements`` (siblings, side by side) out of the tree for a moment; everything goes back after.

    ``text`` is what then stands where they were: True, the text before them joined with
    their tails (XPath's data model: a removed element's following text stays); a string,
    that text instead.
    """
    if not elements:
        yield
        return
    first = elements[0]
    parent = first.getparent()
    assert parent is not None
    previous = first.getprevious()
    before = parent.text if previous is None else previous.tail
    index = parent.index(first)
    joined = (before or "") + "".join(e.tail or "" for e in elements) if text is True else text
    for element in elements:
        parent.remove(element)  # its tail goes with it
    try:
        if previous is None:
            parent.text = joined or None
        else:
            previous.tail = joined or None
        yield
    finally:
        for offset, element in enumerate(elements):
            parent.insert(index + offset, element)
        if previous is None:
            parent.text = before
        else:
            previous.tail = before


def _hash(reference: Reference, data: bytes, lifted: Lifted) -> bytes:
    hasher = hashlib.new(DIGESTS[reference.digest_uri])
    lifted.feed(hasher.update, data)
    return hasher.digest()


def _holders(root: etree._Element, wanted: set[str], id_attribute: str) -> dict[str, list[etree._Element]]:
    """Every element carrying one of the wanted Ids (in any namespace), in one pass."""
    found: dict[str, list[etree._Element]] = {}
    if not wanted:
        return found
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
