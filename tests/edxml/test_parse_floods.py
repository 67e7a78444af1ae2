"""Floods an attacker can add to a validly signed message without breaking its signature:
namespace declarations, relative namespace URIs, comments and processing instructions.

Exclusive c14n ignores namespace declarations a part does not use, and comments; the
edXMLEnvelope start tag and the text between the signed parts are covered by nothing.
So each of these is added by byte surgery to a real signed message, and must be stopped
by the parser's limits, not slip through to schema, c14n and signature code.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from gateway import edxml
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import ForbiddenXML, LimitExceeded
from tests.messages import PROVINCE, full_document

ENVELOPE = b"<edXML:edXMLEnvelope"
HEADER = b"<edXML:edXMLHeader"


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))


def check(data: bytes, pki, limits: edxml.Limits = edxml.DEFAULT_LIMITS) -> edxml.Validation:
    return edxml.validate(data, trust=pki.trust, limits=limits)


def declarations(count: int, start: int = 0) -> bytes:
    return b"".join(b' xmlns:n%d="urn:x:%d"' % (i, i) for i in range(start, start + count))


def in_start_tag(data: bytes, tag: bytes, extra: bytes) -> bytes:
    """``extra`` (attributes) added at the end of the first start tag named ``tag``."""
    end = data.index(b">", data.index(tag))
    return data[:end] + extra + data[end:]


def after_start_tag(data: bytes, tag: bytes, extra: bytes) -> bytes:
    """``extra`` (content) inserted right after the first start tag named ``tag``."""
    end = data.index(b">", data.index(tag)) + 1
    return data[:end] + extra + data[end:]


def refused(data: bytes, pki, *words: str, limits: edxml.Limits = edxml.DEFAULT_LIMITS) -> None:
    """LimitExceeded (EDX103) from the parser and from validate, its message naming ``words``."""
    for attempt in (lambda: parse_xml(data, limits), lambda: check(data, pki, limits)):
        with pytest.raises(LimitExceeded) as caught:
            attempt()
        assert caught.value.code == "EDX103"
        assert all(word in caught.value.message for word in words), caught.value.message


def test_signed_message_is_valid_before_the_surgery(signed, pki):
    """Must pass: the base every flood below starts from."""
    assert check(signed, pki).signature.valid


# --- 2a. namespace declarations ------------------------------------------------------------------


def test_namespace_flood_on_the_envelope_start_tag(signed, pki):
    """20,000 xmlns:nN declarations on the unsigned edXMLEnvelope start tag."""
    flooded = in_start_tag(signed, ENVELOPE, declarations(20_000))
    refused(flooded, pki, "namespace")


def test_namespace_flood_spread_over_many_elements(signed, pki):
    """50 declarations on each of 30 start tags: under any per-element bound, 1,500 in all."""
    starts = [m.end() for m in re.finditer(rb"<edXML:\w+", signed)][:30]
    assert len(starts) == 30
    pieces, last = [], 0
    for number, start in enumerate(starts):
        pieces += [signed[last:start], declarations(50, 50 * number)]
        last = start
    flooded = b"".join([*pieces, signed[last:]])
    refused(flooded, pki, "namespace")


def test_namespaces_per_element_limit(signed, pki):
    """max_namespaces_per_element=3: three declarations on edXMLHeader are read, four are refused."""
    limits = edxml.Limits(max_namespaces_per_element=3)
    assert check(in_start_tag(signed, HEADER, declarations(3)), pki, limits).signature.valid
    refused(in_start_tag(signed, HEADER, declarations(4)), pki, "namespace", limits=limits)


# --- 2b. relative namespace URIs -------------------------------------------------------------------


def test_relative_namespace_uri_is_forbidden(signed, pki):
    """xmlns:r="relative/path" on the unsigned envelope: refused as XML, not left to c14n."""
    data = in_start_tag(signed, ENVELOPE, b' xmlns:r="relative/path"')
    for attempt in (lambda: parse_xml(data), lambda: check(data, pki)):
        with pytest.raises(ForbiddenXML) as caught:
            attempt()
        assert caught.value.code == "EDX102"
        assert "relative namespace" in caught.value.message


# --- 3. comments and processing instructions ---------------------------------------------------------


def test_comment_flood(signed, pki):
    """200,000 empty comments right after the edXMLEnvelope start tag."""
    refused(after_start_tag(signed, ENVELOPE, b"<!---->" * 200_000), pki, "comment")


def test_processing_instruction_flood(signed, pki):
    """200,000 processing instructions right after the edXMLEnvelope start tag."""
    refused(after_start_tag(signed, ENVELOPE, b"<?p?>" * 200_000), pki, "processing instruction")


def test_comments_limit(signed, pki):
    """max_comments=5 counts comments and PIs together: five comments validate, six or 3+3 are refused."""
    limits = edxml.Limits(max_comments=5)
    assert check(after_start_tag(signed, ENVELOPE, b"<!---->" * 5), pki, limits).signature.valid
    refused(after_start_tag(signed, ENVELOPE, b"<!---->" * 6), pki, "comment", limits=limits)
    refused(after_start_tag(signed, ENVELOPE, b"<!---->" * 3 + b"<?p?>" * 3), pki, limits=limits)


# --- found in an independent review of the fix ---------------------------------------------------------


def test_an_attribute_flood_in_one_start_tag_is_refused_from_the_bytes(signed, pki):
    """libxml2 builds a whole start tag before the attribute count can see it: 13 million
    attributes in one tag took 25 s and 3.5 GB. The bytes are looked at first."""
    flood = b"".join(b' a%d="1"' % k for k in range(250_000))
    refused(in_start_tag(signed, b"<edXML:edXMLEnvelope", flood), pki, "attributes")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_flood_in_utf16_or_utf32_is_refused_from_the_bytes_too(encoding):
    """The pre-scan looked for ASCII bytes; in UTF-16 the same markup has other bytes."""
    text = '<?xml version="1.0" encoding="UTF-16"?><a' + "".join(f' xmlns:n{k}="urn:x:{k}"' for k in range(20_000))
    data = (text + "><b/></a>").encode(encoding)
    with pytest.raises(LimitExceeded, match="namespace declarations"):
        parse_xml(data)


def test_quoted_markup_in_a_text_is_not_taken_for_a_flood(pki):
    """A Content quoting 1,000 namespace declarations (escaped <, raw quotes) is text, not markup."""
    quoted = '&lt;a xmlns="urn:x"/&gt; ' * 1_000
    document = dataclasses.replace(full_document(), content="placeholder")
    data = edxml.sign_message(document, pki.identity("000.00.00.H58")).replace(b"placeholder", quoted.encode())
    parse_xml(data)  # read: the exact count while parsing finds no declaration in a text
