"""Lifted messages: large base64 kept out of the tree must change nothing a reader or a
signature sees, only what it costs. Every test compares the lifted way with the whole tree."""

from __future__ import annotations

import base64
import dataclasses
import os
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway import edxml
from gateway.edxml import dsig, lift
from gateway.edxml.build import build_tree, serialize
from gateway.edxml.ns import DSIG, EDXML
from gateway.edxml.parse import message_from_tree
from gateway.edxml.signature import sign_tree
from gateway.edxml.xmlsafe import parse_lifted, parse_xml
from gateway.errors import GatewayError, MalformedXML, SignatureMismatch, StructureError
from tests.messages import DEPARTMENT, PROVINCE, full_document

E = f"{{{EDXML}}}"
BIG = 300 * 1024  # base64 of it is well over lift.MIN_RUN, and the message over lift.LIFT_FROM


def with_scans(*sizes: int, sender: str = PROVINCE) -> edxml.Document:
    base = full_document(attachments=1, sender=sender)
    scans = tuple(
        edxml.Attachment(f"scan-{i}", f"scan {i}.pdf", os.urandom(size), "application/pdf")
        for i, size in enumerate(sizes)
    )
    return dataclasses.replace(base, attachments=base.attachments + scans)


def signed_whole(document: edxml.Document, identity: edxml.SigningIdentity) -> bytes:
    """Signed the way it was before lifting: the base64 inside the tree."""
    root = build_tree(document)
    sign_tree(root, identity)
    return serialize(root)


def read_whole(data: bytes, pki) -> edxml.Validation:
    return edxml.validate_root(parse_xml(data), trust=pki.trust)


def digests(data: bytes) -> list[str]:
    root = parse_xml(data)
    return [el.text for el in root.iter(f"{{{DSIG}}}DigestValue")]


@pytest.mark.parametrize("code", [PROVINCE, DEPARTMENT], ids=["rsa", "ec"])
def test_signing_lifted_gives_the_message_the_whole_tree_gives(pki, code):
    document = with_scans(BIG, 2 * BIG, sender=code)
    identity = pki.identity(code)
    lifted = edxml.sign_message(document, identity)
    whole = signed_whole(document, identity)
    assert len(lift.lift(lifted)[1].runs) == 2  # both scans were lifted, the small file was not
    assert digests(lifted) == digests(whole)
    if code == PROVINCE:  # RSA PKCS#1 v1.5 is deterministic: the very same bytes
        assert lifted == whole
    for data in (lifted, whole):
        for checked in (edxml.validate(data, trust=pki.trust), read_whole(data, pki)):
            assert checked.signature.valid
            assert checked.message == document


def test_reading_lifted_gives_the_message_the_whole_tree_gives(pki):
    data = edxml.sign_message(with_scans(BIG), pki.identity(PROVINCE))
    root, lifted = parse_lifted(data)
    assert lifted and len(etree.tostring(root)) < len(data) // 10  # the tree is small
    assert message_from_tree(root, lifted=lifted) == message_from_tree(parse_xml(data))


def line_broken(data: bytes, *, line_end: bytes) -> bytes:
    """The message with each attachment's base64 broken into 76-character lines, as .NET writes it."""

    def breaks(match: re.Match[bytes]) -> bytes:
        text = match.group(2)
        lines = [text[i : i + 76] for i in range(0, len(text), 76)]
        return match.group(1) + line_end + line_end.join(lines) + line_end + match.group(3)

    return re.sub(
        rb"(<edXML:ContentTransferEncoded[^>]*>)([A-Za-z0-9+/=]+)(</edXML:ContentTransferEncoded>)", breaks, data
    )


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_base64_in_lines_is_lifted_and_verifies(pki, line_end):
    """Signed over LF lines; sent with CRLF, the parser reads LF again, and so must the lift."""
    unsigned = line_broken(edxml.build(with_scans(BIG)), line_end=b"\n")
    signed = edxml.sign(unsigned, pki.identity(PROVINCE))
    sent = signed.replace(b"\n", line_end) if line_end == b"\r\n" else signed
    assert lift.lift(sent)[1]  # lifted, not parsed whole
    checked = edxml.validate(sent, trust=pki.trust)
    assert checked.signature.valid and checked.message == read_whole(sent, pki).message


def test_a_changed_character_in_a_lifted_run_breaks_the_signature(pki):
    data = bytearray(edxml.sign_message(with_scans(BIG), pki.identity(PROVINCE)))
    middle = data.rindex(b"<edXML:ContentTransferEncoded") + 100_000  # inside the scan's base64
    data[middle] = ord("B") if data[middle] != ord("B") else ord("C")
    assert lift.lift(bytes(data))[1]
    with pytest.raises(SignatureMismatch, match="AttachmentEncoded"):
        edxml.validate(bytes(data), trust=pki.trust)


def test_base64_anywhere_else_is_read_whole_as_before(pki):
    """A long base64-like text in a Description and another in a comment: nothing is lifted,
    and the message reads as it always did (a token must never reach a reader)."""
    document = with_scans(BIG)
    looks_like_base64 = base64.b64encode(os.urandom(BIG)).decode()
    scans = (dataclasses.replace(document.attachments[1], description=looks_like_base64),)
    described = dataclasses.replace(document, attachments=document.attachments[:1] + scans)
    data = edxml.sign_message(described, pki.identity(PROVINCE))
    commented = data.replace(
        b"<edXML:edXMLEnvelope", b"<!-- >" + looks_like_base64.encode() + b"< --><edXML:edXMLEnvelope", 1
    )
    for message in (data, commented):
        _, lifted = parse_lifted(message)
        assert not lifted
        checked = edxml.validate(message, trust=pki.trust)
        assert checked.signature.valid
        assert checked.message.attachments[1].description == looks_like_base64


def test_errors_after_a_lifted_run_name_the_lines_of_the_file(pki):
    """A token stands for as many lines as its run: a line number after it is the file's."""
    unsigned = line_broken(edxml.build(with_scans(BIG)), line_end=b"\n")
    stray = unsigned.replace(b"</edXML:ContentTransferEncoded>", b"</edXML:ContentTransferEncoded><Stray/>")
    unclosed = unsigned.replace(b"</AttachmentEncoded>", b"</AttachmentEncoded><Stray>")
    assert lift.lift(stray)[1] and lift.lift(unclosed)[1]
    with pytest.raises(StructureError) as lifted_error:
        root, lifted = parse_lifted(stray)
        message_from_tree(root, lifted=lifted)
    with pytest.raises(StructureError) as whole_error:
        message_from_tree(parse_xml(stray))
    assert lifted_error.value.where == whole_error.value.where  # libxml2's count, lifted or not
    with pytest.raises(MalformedXML) as lifted_error:
        parse_lifted(unclosed)
    with pytest.raises(MalformedXML) as whole_error:
        parse_xml(unclosed)
    assert lifted_error.value.where == whole_error.value.where


def test_a_message_in_another_encoding_is_not_lifted(pki):
    data = edxml.build(with_scans(BIG))
    utf16 = data.replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode("utf-8").encode("utf-16")
    assert not lift.lift(utf16)[1]
    latin = data.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    assert lift.lift(latin)[1]  # ASCII-compatible: the same characters in the same bytes


def test_many_small_elements_are_not_looked_at_one_by_one():
    """The search jumps by the length of a run: a message of tiny elements costs a few searches."""
    data = b"<a>" + b"<b>x</b>" * 100_000 + b"</a>"
    assert lift._find_runs(data, lift.MIN_RUN) == []
    assert not lift.lift(data)[1]


def test_an_attachment_decodes_the_same_lifted_or_whole():
    for text in (b"QUJD" * 20_000, b"QUJD\n" * 20_000, b"  QUJD " * 20_000):
        data = b"<r><x>" + text + b"</x></r>"
        spans = lift._find_runs(data, 1024)
        assert len(spans) == 1 and spans[0][:2] == (6, 6 + len(text))
        assert (spans[0][2] is not None) == (b" " not in text and b"\n" not in text)  # decoded on the way
    assert lift._find_runs(b"<r><x>" + b"QUJD!" * 20_000 + b"</x></r>", 1024) == []
    assert lift._find_runs(b"<r><x>" + b" " * 20_000 + b"</x></r>", 1024) == []  # blanks alone stay


def test_a_signature_of_another_shape_is_checked_with_its_runs_put_back(pki):
    """An enveloped signxml signature is verified by signxml on the whole tree: the runs go back in."""
    from tests.edxml.forgery import attacker_sign

    root = build_tree(with_scans(BIG))
    data = serialize(attacker_sign(root, pki.agencies[PROVINCE], whole_document=True))
    assert lift.lift(data)[1]
    assert edxml.validate(data, trust=pki.trust).signature.valid
    changed = bytearray(data)
    middle = data.rindex(b"<edXML:ContentTransferEncoded") + 100_000
    changed[middle] = ord("B") if changed[middle] != ord("B") else ord("C")
    with pytest.raises(SignatureMismatch):
        edxml.validate(bytes(changed), trust=pki.trust)


def same_outcome(data: bytes, pki) -> str:
    """Validate lifted and whole: the same verdict, the same message, or the same refusal."""
    outcomes = []
    for read in (lambda: edxml.validate(data, trust=pki.trust), lambda: read_whole(data, pki)):
        try:
            checked = read()
            outcomes.append(("valid" if checked.signature.valid else "unsigned", checked.message))
        except GatewayError as exc:
            outcomes.append((exc.code, exc.where))
    assert outcomes[0] == outcomes[1]
    return outcomes[0][0]


def test_what_only_the_skeleton_would_show_does_not_change_the_outcome(pki):
    """Found in review: a DOCTYPE-like text far into the file (in CDATA, a comment, a processing
    instruction) came within the prolog check once the runs were cut out before it."""
    document = with_scans(BIG)
    late = edxml.Attachment("late", "late.html", b"<html></html>", "text/html", description="see <!DOCTYPE html>")
    signed = edxml.sign_message(
        dataclasses.replace(document, attachments=(*document.attachments, late)), pki.identity(PROVINCE)
    )
    escaped = b"see &lt;!DOCTYPE html&gt;"  # in the manifest near the top too: only the late one changes
    at = signed.rindex(escaped)
    in_cdata = signed[:at] + b"<![CDATA[see <!DOCTYPE html>]]>" + signed[at + len(escaped) :]
    for data in (in_cdata, signed + b"<!-- <!ENTITY is how a DTD declares one -->", signed + b"<?note <!DOCTYPE?>"):
        assert lift.lift(data)[1]
        assert same_outcome(data, pki) == "valid"


def test_text_in_another_encoding_is_never_lifted(pki):
    """Found in review: UTF-16 text whose two bytes are both base64 characters, and a
    declaration longer than the part of the file that was looked at."""
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?><a><b>\u413e' + "\u4141" * 150_000 + "\u413c</b></a>").encode(
        "utf-16"
    )
    jis = (
        b'<?xml version="1.0"'
        + b" " * 600
        + b'encoding="ISO-2022-JP"?><a><b>\x1b$B'
        + b"AA" * 100_000
        + b"\x1b(B</b></a>"
    )
    for data in (utf16, jis):
        assert not lift.lift(data)[1]
        assert etree.tostring(parse_lifted(data)[0]) == etree.tostring(parse_xml(data))


def test_base64_under_a_signature_is_not_taken_for_an_attachment(pki):
    """Found in review: a ContentTransferEncoded anywhere counted as a place for a run, even
    inside SignedInfo, which is then checked without the run: a valid signature failed."""
    identity = pki.identity(PROVINCE)
    root = parse_xml(edxml.sign_message(with_scans(BIG), identity))
    signed_info = root.find(f".//{{{DSIG}}}SignedInfo")
    assert signed_info is not None
    method = signed_info.find(f"{{{DSIG}}}SignatureMethod")
    etree.SubElement(method, f"{E}ContentTransferEncoded").text = base64.b64encode(os.urandom(BIG)).decode()
    value = identity.key.sign(dsig.c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    root.find(f".//{{{DSIG}}}SignatureValue").text = base64.b64encode(value).decode()
    data = serialize(root)
    assert len(lift.lift(data)[1].runs) == 2  # the scan's run and the one under SignedInfo
    assert not parse_lifted(data)[1]  # so the message is read whole
    assert same_outcome(data, pki) == "valid"


# Fragments that change how the bytes around a run are read: markup that may hold a run, a
# character reference next to it, line ends the parser rewrites, a break in the base64.
FRAGMENTS = [
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?pi ",
    b"?>",
    b"&#65;",
    b"&#x41;",
    b"&#13;",
    b"&amp;",
    b"\r",
    b"\r\n",
    b" ",
    b"\t",
    b"=",
    b"!",
    b">",
    b"<",
    b"<x/>",
    "ạ".encode(),
]


@pytest.fixture(scope="module")
def large_signed(pki) -> bytes:
    return edxml.sign_message(with_scans(BIG), pki.identity(PROVINCE))


def read_both_ways(data: bytes) -> list[tuple]:
    """The canonical form's digest of the whole document and the message, lifted and whole."""
    outcomes: list[tuple] = []
    for parse in (parse_lifted, lambda d: (parse_xml(d), lift.NOT_LIFTED)):
        try:
            root, lifted = parse(data)
            outcomes.append((dsig.digest(root, "sha256", lifted), message_from_tree(root, lifted=lifted)))
        except GatewayError as exc:
            outcomes.append((exc.code, exc.where))
    return outcomes


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 2**31), st.sampled_from(FRAGMENTS)), min_size=1, max_size=4))
def test_any_small_edit_near_a_run_reads_the_same_lifted_or_whole(large_signed, edits):
    """Edits placed around and inside the scan's base64, where lifting decides: whatever the
    edit does (a refusal, another text, a run no longer lifted), it does it both ways, down to
    the bytes a signature would cover."""
    data = large_signed
    start = data.rindex(b"<edXML:ContentTransferEncoded")
    end = data.index(b"</AttachmentEncoded>") + 40
    for where, fragment in edits:
        at = start + where % (end - start)
        data = data[:at] + fragment + data[at:]
    lifted, whole = read_both_ways(data)
    assert lifted == whole
