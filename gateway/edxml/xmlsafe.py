"""The one place where bytes become an XML tree, with every safety limit applied.

edXML never carries a DOCTYPE, entities or external references, so any of them is
refused outright; lxml's "safe" flags alone would let an XXE document through with
the entity merely unexpanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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

    def __post_init__(self) -> None:
        for name in (
            "max_bytes",
            "max_depth",
            "max_elements",
            "max_attachments",
            "max_attachment_bytes",
            "max_attributes",
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
    parser = etree.XMLPullParser(events=("start", "end"), **_PARSER_OPTIONS)
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
    """Counts elements, attributes and depth from parser events; raises at the first excess."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.depth = 0
        self.elements = 0
        self.attributes = 0

    def take(self, events: Iterable[tuple[str, etree._Element]]) -> None:
        limits = self.limits
        for event, node in events:
            if event == "end":
                self.depth -= 1
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
