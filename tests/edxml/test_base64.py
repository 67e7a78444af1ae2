"""Attachment base64: the one-pass SIMD decode and the careful decode that names what is wrong
agree on everything either accepts."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.edxml.attachments import _decode_base64_carefully, decode_base64
from gateway.edxml.xmlsafe import DEFAULT_LIMITS
from gateway.errors import AttachmentError


def element(text: str) -> etree._Element:
    el = etree.Element("ContentTransferEncoded")
    el.text = text
    return el


@given(st.binary(max_size=600), st.sampled_from([0, 4, 76]), st.sampled_from(["\n", "\r\n", " "]))
def test_any_bytes_come_back_whole_or_wrapped(data, width, blank):
    text = base64.b64encode(data).decode("ascii")
    if width:
        text = blank.join(text[i : i + width] for i in range(0, len(text), width))
    assert decode_base64(element(text), DEFAULT_LIMITS) == data


# the base64 alphabet, padding, blanks and a few characters that do not belong
@given(st.text(alphabet="ABCDQUJwxyz019+/=-_ \n\té", max_size=40))
def test_the_fast_and_the_careful_decode_agree(text):
    try:
        careful = _decode_base64_carefully(element(text), text)
    except AttachmentError:
        careful = None
    try:
        fast = decode_base64(element(text), DEFAULT_LIMITS)
    except AttachmentError as exc:
        assert careful is None, f"refused {text!r} ({exc.message}) that the careful decode reads"
        assert "base64" in exc.message
        return
    assert fast == careful


@pytest.mark.parametrize("text", ["QUJD", "QUI=", "QQ==", ""])
def test_canonical_forms_decode_alike_both_ways(text):
    assert decode_base64(element(text), DEFAULT_LIMITS) == binascii.a2b_base64(text, strict_mode=True)
