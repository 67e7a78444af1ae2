"""XML Schema validation of edXML in two modes.

``strict``: what the gateway emits. VNPT child order, the fields receivers require,
lengths, QĐ 20 agency codes, yyyy/MM/dd dates (schemas/*-strict.xsd).
``lenient``: what the gateway accepts from other systems. Any child order, empty
optional values, the agency identifiers seen in the wild (schemas/*-lenient.xsd).
The reader (:mod:`gateway.edxml.parse`) adds the checks XSD 1.0 cannot express in
lenient mode: cardinality, code lists, matching manifest and attachments.
"""

from __future__ import annotations

import enum
import functools
from importlib import resources

from lxml import etree

from gateway.edxml import ns
from gateway.errors import SchemaViolation


class SchemaMode(enum.Enum):
    STRICT = "strict"
    LENIENT = "lenient"


class MessageKind(enum.Enum):
    DOCUMENT = "document"
    STATUS = "status"


@functools.cache
def load_schema(kind: MessageKind, mode: SchemaMode) -> etree.XMLSchema:
    """Compile one of the four shipped schemas (cached: compiled schemas are immutable)."""
    name = f"{kind.value}-{mode.value}.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    with resources.as_file(resources.files("gateway.schemas") / name) as path:
        return etree.XMLSchema(etree.parse(str(path), parser))


def kind_of(root: etree._Element) -> MessageKind:
    """A status message is the one whose MessageHeader holds a StatusCode."""
    for _ in root.iterfind(
        f"{{{ns.EDXML}}}edXMLEnvelope/{{{ns.EDXML}}}edXMLHeader/{{{ns.EDXML}}}MessageHeader/{{{ns.EDXML}}}StatusCode"
    ):
        return MessageKind.STATUS
    return MessageKind.DOCUMENT


def validate_tree(root: etree._Element, mode: SchemaMode, kind: MessageKind | None = None) -> MessageKind:
    """Check ``root`` against the schema of its kind; raise SchemaViolation naming the first problem."""
    kind = kind or kind_of(root)
    schema = load_schema(kind, mode)
    if schema.validate(root):
        return kind
    error = schema.error_log[0]
    raise SchemaViolation(f"{ns.pretty(error.message)} ({mode.value} {kind.value} schema)", where=f"line {error.line}")
