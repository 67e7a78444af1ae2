"""Mutation and property-based fuzzing of the reader and the verifier: whatever the bytes, the
answer is a value or a GatewayError with its code, never another exception or a hang.

The default run is bounded (a few hundred cases); set HYPOTHESIS_PROFILE=fuzz for a long one.
"""

from __future__ import annotations

import dataclasses
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import edxml
from gateway.edxml.build import serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import GatewayError
from tests.edxml.forgery import (
    BASE64,
    ENVELOPED,
    EXC,
    INC,
    XPATH,
    XSLT,
    Ref,
    craft_signature,
    on_part,
    part_refs,
)
from tests.messages import PROVINCE, full_document, full_status

E = f"{{{EDXML}}}"
D = f"{{{DSIG}}}"

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"

SEEDS = [edxml.build(full_document(attachments=1)), edxml.build(full_status())]
SPECIAL = [
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"]]>",
    b"<!DOCTYPE x>",
    b"<?pi?>",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b'xmlns:edXML="urn:x"',
    b"cid:",
    b"=",
    b"\r\n",
    b"\xe2\x80\xae",
]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "delete", "insert", "special", "truncate", "duplicate"]))
        if action == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=20))
        elif action == "special":
            data[position:position] = draw(st.sampled_from(SPECIAL))
        elif action == "truncate":
            del data[position:]
        elif action == "duplicate" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[position:position] = data[start : start + draw(st.integers(1, 200))]
    return bytes(data)


def outcome(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except GatewayError as exc:
        assert exc.code and exc.message, exc
        return exc.code
    return "ok"


@settings(max_examples=5000 if LONG else 300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_are_read_or_refused_with_a_code(data):
    outcome(edxml.read, data)
    outcome(edxml.validate, data, trust=None, require_signature=False)


@settings(max_examples=5000 if LONG else 200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data):
    outcome(edxml.read, data)


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(attachments=1), pki.identity("000.00.00.H58"))


@settings(
    max_examples=2000 if LONG else 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(position=st.integers(0, 10**9), bit=st.integers(0, 7))
def test_a_flipped_bit_in_a_signed_message_never_passes_unnoticed_inside_signed_text(signed, pki, position, bit):
    """Flip one bit anywhere: the result is refused, or still valid only where no signed value changed."""
    data = bytearray(signed)
    data[position % len(data)] ^= 1 << bit
    try:
        checked = edxml.validate(bytes(data), trust=pki.trust)
    except GatewayError:
        return
    original = edxml.validate(signed, trust=pki.trust)
    assert checked.message == original.message  # a flip in markup that c14n forgets (e.g. a quote style) is fine


# --- transforms and namespace declarations (issue 13) ---------------------------------------------

TRANSFORM_POOL = (
    ENVELOPED,
    EXC,
    EXC + "WithComments",
    INC,
    INC + "#WithComments",
    BASE64,
    XPATH,
    XSLT,
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/TR/xml-exc-c14n#",  # the samples' misspelt URI
    "urn:unknown",
    "",
)


@st.composite
def crafted_signatures(draw) -> list[Ref]:
    """A signature by the province's real key over its own message, with whatever transforms."""
    transforms = st.lists(st.sampled_from(TRANSFORM_POOL), max_size=3).map(tuple)
    if draw(st.booleans()):
        uri = draw(st.sampled_from(["", "#xpointer(/)", "cid:0"]))
        octets = draw(st.sampled_from([None, b""])) if uri == "" else b""  # the helper digests only "" itself
        return [Ref(uri, draw(transforms), octets=octets)]
    return [(name, draw(transforms), draw(st.sampled_from([None, b""]))) for name in PARTS]


PARTS = ("MessageHeader", "Bussiness", "TraceHeader", "edXMLBody", "AttachmentEncoded")


def _signed_with(spec, document: edxml.Document, pki) -> bytes:
    root = edxml.build_tree(document)
    if isinstance(spec[0], Ref):
        refs = spec
    else:
        refs = part_refs(root)
        for name, transforms, octets in spec:
            refs = on_part(refs, name, transforms, octets)
    return serialize(craft_signature(root, pki.agencies[PROVINCE], refs))


@settings(
    max_examples=2000 if LONG else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=crafted_signatures())
def test_no_transform_makes_a_signature_fit_another_message(pki, spec):
    """Whatever transforms the signer chose, its Signature pasted onto another message of the same
    sender (another Subject and attachment) never validates: no signature is a forgery token."""
    original = _signed_with(spec, full_document(attachments=1), pki)
    if outcome(edxml.validate, original, trust=pki.trust) == "ok":
        # accepted shapes only: enveloped-signature first, then at most one C14N 1.0
        for transforms in _transform_lists(original):
            c14n = [t for t in transforms if t != ENVELOPED]
            assert ENVELOPED not in transforms[1:], transforms
            assert len(c14n) <= 1 and all(t in (EXC, EXC + "WithComments", INC, INC + "#WithComments") for t in c14n)
    forged_document = dataclasses.replace(
        full_document(attachments=1),
        subject="Văn bản giả mạo",
        attachments=(dataclasses.replace(full_document(attachments=1).attachments[0], data=b"MZ forged"),),
    )
    root = parse_xml(_signed_with(spec, forged_document, pki))
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    header.replace(
        header.find(f"{D}Signature"), parse_xml(original).find(f"{E}edXMLEnvelope/{E}edXMLHeader/{D}Signature")
    )
    assert outcome(edxml.validate, serialize(root), trust=pki.trust) != "ok"


def _transform_lists(data: bytes) -> list[list[str]]:
    root = parse_xml(data)
    return [[t.get("Algorithm") for t in reference.iter(f"{D}Transform")] for reference in root.iter(f"{D}Reference")]


NAMESPACE_URIS = ("urn:x", "http://example.org/a", "", "relative/path", "../up", "#frag", "urn:x:" + "y" * 200)


@settings(
    max_examples=2000 if LONG else 80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    where=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
    count=st.one_of(st.integers(1, 8), st.integers(60, 70), st.integers(900, 1100)),
    uri=st.sampled_from(NAMESPACE_URIS),
)
def test_namespace_declarations_anywhere_leave_the_message_as_it_was_or_are_refused(signed, pki, where, count, uri):
    """Declarations added to start tags of a signed message (signed parts included): exclusive c14n
    leaves unused ones out, so the message stays valid and unchanged, or a limit refuses it."""
    data = signed
    starts = [m.end() for m in re.finditer(rb"<[A-Za-z][^\s>/]*", data)]
    for index, position in enumerate(sorted({starts[w % len(starts)] for w in where}, reverse=True)):
        declarations = b"".join(b' xmlns:f%d_%d="%s"' % (index, k, uri.encode()) for k in range(count))
        data = data[:position] + declarations + data[position:]
    try:
        checked = edxml.validate(data, trust=pki.trust)
    except GatewayError as exc:
        assert exc.code in {"EDX102", "EDX103", "EDX101"}, exc
        return
    assert checked.message == edxml.validate(signed, trust=pki.trust).message
