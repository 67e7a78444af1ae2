"""The one place where bytes become an XML tree, with every safety limit applied.

edXML never carries a DOCTYPE, entities or external references, so any of them is
refused outright; lxml's "safe" flags alone would let an XXE document through with
the entity merely unexpanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.edxml.lift import NOT_LIFTED, Lifted, check_placement, lift
from gateway.errors import ForbiddenXML, LimitExceeded, MalformedXML

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what the gateway agrees to read. The defaults let a 100 MB scan through
    (base64 grows it by a third) and stop anything that only an attacker would send."""

    max_bytes: int = 160 * MiB
    max_depth: int = 64
    max_elements: int = 50_000
    max_attachments: int = 100
    max_attachment_bytes: int = 110 * MiB
    max_attributes: int = 100_000
    # libxml2's c14n grows with the square of the namespaces in scope, and runs once per
    # Reference: 80,000 declarations on an unsigned element cost a minute per message.
    max_namespaces: int = 1_000
    max_namespaces_per_element: int = 64
    # comments and processing instructions together: each is a node in the tree (3 million
    # empty comments, 21 MB, took 532 MB); edXML needs none
    max_comments: int = 10_000

    def __post_init__(self) -> None:
        for name in (
            "max_bytes",
            "max_depth",
            "max_elements",
            "max_attachments",
            "max_attachment_bytes",
            "max_attributes",
            "max_namespaces",
            "max_namespaces_per_element",
            "max_comments",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive")


DEFAULT_LIMITS = Limits()

# DOCTYPE can only stand in the prolog; a cheap look before parsing spares a huge parse.
_PROLOG_SCAN = 64 * 1024


class _RefuseExternal(etree.Resolver):
    """Asked for any external resource (DTD, entity, XInclude), the answer is no."""

    def resolve(self, system_url, public_id, context):
        raise ForbiddenXML(f"reference to an external resource {system_url!r}", where="prolog")


def new_parser() -> etree.XMLParser:
    """The hardened parser; also handed to signxml, which re-parses what it signs and verifies."""
    # A fresh parser per call: lxml parsers are not thread-safe and keep error state.
    # Do not add collect_ids=False: with it libxml2 opens the external DTD subset
    # (a test with a named pipe caught this); the resolver below is the second lock.
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    parser.resolvers.add(_RefuseExternal())
    return parser


_PARSER_OPTIONS = {
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "no_network": True,
    "huge_tree": True,  # base64 text nodes above 10 MB; our own limits bound the rest
    "remove_blank_text": False,
}
_CHUNK = 64 * 1024
# Below this, libxml2 builds what a flood could hold in well under a millisecond and the
# counts while parsing stop it; the look at the bytes (45 µs for 10 KB) is for larger input.
_PRESCAN_FROM = 64 * 1024
_EVENTS = ("start", "end", "start-ns", "comment", "pi")
# RFC 3986: an absolute URI starts with a scheme. C14N is undefined for relative namespace
# URIs (libxml2 refuses them), so one would turn a valid signature into an error.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DECLARATION = re.compile(rb"xmlns(?::[^\s=<>]+)?\s*=\s*[\"']")


def parse_xml(data: bytes, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """Parse ``data`` into an element tree or raise a FormatError saying what and where.

    The bytes are fed in chunks and every element is counted as it starts, so an input
    made of millions of tiny elements or attributes is stopped when it crosses a limit,
    not after libxml2 has built all of it.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes")
    data = bytes(data)
    size = len(data)
    if size > limits.max_bytes:
        raise LimitExceeded(f"message is {size} bytes, the limit is {limits.max_bytes}")
    if size == 0:
        raise MalformedXML("empty input")
    head = data[:_PROLOG_SCAN]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ForbiddenXML("DOCTYPE or entity declaration: edXML never carries one", where="prolog")
    if size >= _PRESCAN_FROM:
        _prescan(data, limits)
    parser = etree.XMLPullParser(events=_EVENTS, **_PARSER_OPTIONS)
    parser.resolvers.add(_RefuseExternal())
    shape = _Shape(limits)
    try:
        for offset in range(0, size, _CHUNK):
            parser.feed(data[offset : offset + _CHUNK])
            shape.take(parser.read_events())
        root = parser.close()
        shape.take(parser.read_events())
    except ForbiddenXML:
        raise
    except etree.XMLSyntaxError as exc:
        # lxml appends ", line N, column M" to the message; say it once, in `where`
        text = re.sub(r", line \d+, column \d+$", "", str(exc.msg or exc))
        where = f"line {exc.lineno}, column {exc.offset + 1}" if exc.lineno else None
        if "depth" in text.lower():
            raise LimitExceeded(f"nesting too deep: {text}", where=where) from None
        raise MalformedXML(text, where=where) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ForbiddenXML("DOCTYPE declaration: edXML never carries one", where="prolog")
    return root


def _prescan(data: bytes, limits: Limits) -> None:
    """Refuse a flood of namespace declarations, attributes, comments or processing
    instructions from the bytes, in milliseconds, before libxml2 builds any of it: it parses
    a whole start tag before anything can count its attributes (13 million in one tag took
    25 s and 3.5 GB), and a 2 MB tag of declarations takes it 0.2 s.

    Each count is an upper bound of what the parser finds, since these only start markup
    outside CDATA and text; the namespace and attribute counts are compared with a multiple
    of their limit, so that quoted markup in a text is not taken for a flood, and the exact
    counts while parsing enforce the limits themselves. A UTF-16 or UTF-32 message is looked
    at in UTF-8, where the same markup has the same bytes.
    """
    text = _as_utf8(data)
    if text.count(b"xmlns") > 4 * limits.max_namespaces and len(_DECLARATION.findall(text)) > 4 * limits.max_namespaces:
        raise LimitExceeded(f"more than {limits.max_namespaces} namespace declarations")
    if text.count(b'="') + text.count(b"='") > 2 * limits.max_attributes:
        raise LimitExceeded(f"more than {limits.max_attributes} attributes")
    markup = text.count(b"<!--") + text.count(b"<?") - text.startswith(b"<?xml")
    if markup > limits.max_comments:
        raise LimitExceeded(f"more than {limits.max_comments} comments and processing instructions")


def _as_utf8(data: bytes) -> bytes:
    """``data`` if its markup is ASCII bytes; a UTF-16 or UTF-32 message transcoded (for looking only)."""
    head = data[:4]
    if head[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"\x00" not in head:
        return data
    if head in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        encoding = "utf-32"
    elif head.startswith(b"\x00\x00\x00"):
        encoding = "utf-32-be"
    elif head.endswith(b"\x00\x00\x00"):
        encoding = "utf-32-le"
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-16-be" if head.startswith(b"\x00") else "utf-16-le"
    return data.decode(encoding, errors="replace").encode("utf-8")


def parse_lifted(data: bytes | bytearray, limits: Limits = DEFAULT_LIMITS) -> tuple[etree._Element, Lifted]:
    """:func:`parse_xml` with the long base64 runs of a large message kept out of the tree.

    The tree is exactly what parse_xml would give, except that each lifted run stands as a
    token that ``Lifted`` resolves (see gateway.edxml.lift for why that is exact). A message
    that is small, or whose runs are not all attachment contents, is parsed whole.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_lifted takes bytes")
    if isinstance(data, memoryview):
        data = bytes(data)  # a bytearray is read where it stands: getEdoc decodes a message into one
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"message is {len(data)} bytes, the limit is {limits.max_bytes}")
    skeleton, lifted = lift(data)
    if lifted:
        try:
            root = parse_xml(skeleton, limits)
        except (MalformedXML, ForbiddenXML, LimitExceeded):
            pass  # the message as a whole decides, not its skeleton (a DOCTYPE seen sooner, an encoding)
        else:
            if check_placement(root, lifted):
                return root, lifted
            del root
        del skeleton, lifted  # the runs decoded while lifting are not kept through the whole parse
    return parse_xml(data, limits), NOT_LIFTED


class _Shape:
    """Counts what the parser builds, from its events; raises at the first excess.

    Elements, attributes, depth, namespace declarations (per element and in all), comments
    and processing instructions: each is a node libxml2 allocates or c14n walks.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.depth = 0
        self.elements = 0
        self.attributes = 0
        self.namespaces = 0
        self.declared: list[tuple[str, str]] = []  # on the element about to start
        self.comments = 0

    def take(self, events: Iterable[tuple[str, Any]]) -> None:
        limits = self.limits
        for event, node in events:
            if event == "end":
                self.depth -= 1
                continue
            if event == "start-ns":
                self.declared.append(node)
                continue
            if event in ("comment", "pi"):
                self.comments += 1
                if self.comments > limits.max_comments:
                    raise LimitExceeded(
                        f"more than {limits.max_comments} comments and processing instructions",
                        where=f"line {node.sourceline}",
                    )
                continue
            self.depth += 1
            self.elements += 1
            self.attributes += len(node.attrib)
            if self.depth > limits.max_depth:
                raise LimitExceeded(f"nesting deeper than {limits.max_depth} levels", where=f"line {node.sourceline}")
            if self.elements > limits.max_elements:
                raise LimitExceeded(f"more than {limits.max_elements} elements", where=f"line {node.sourceline}")
            if self.attributes > limits.max_attributes:
                raise LimitExceeded(f"more than {limits.max_attributes} attributes", where=f"line {node.sourceline}")
            if self.declared:
                self._namespaces(node)

    def _namespaces(self, node: etree._Element) -> None:
        limits = self.limits
        where = f"line {node.sourceline}, element {node.tag}"
        self.namespaces += len(self.declared)
        if len(self.declared) > limits.max_namespaces_per_element:
            raise LimitExceeded(
                f"{len(self.declared)} namespace declarations on one element;"
                f" at most {limits.max_namespaces_per_element} are read",
                where=where,
            )
        if self.namespaces > limits.max_namespaces:
            raise LimitExceeded(f"more than {limits.max_namespaces} namespace declarations", where=where)
        for prefix, uri in self.declared:
            if uri and not _ABSOLUTE_URI.match(uri):
                name = f"xmlns:{prefix}" if prefix else "xmlns"
                raise ForbiddenXML(f"relative namespace URI {name}={uri!r}: edXML uses absolute ones", where=where)
        self.declared.clear()
