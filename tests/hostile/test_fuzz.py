"""Mutation and property-based fuzzing of the reader and the verifier: whatever the bytes, the
answer is a value or a GatewayError with its code, never another exception or a hang.

The default run is bounded (a few hundred cases); set HYPOTHESIS_PROFILE=fuzz for a long one.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import edxml
from gateway.errors import GatewayError
from tests.conftest import full_document, full_status

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
