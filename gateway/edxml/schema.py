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
import threading
from importlib import resources
from pathlib import Path

from lxml import etree

from gateway.edxml import ns
from gateway.errors import SchemaViolation


class SchemaMode(enum.Enum):
    STRICT = "strict"
    LENIENT = "lenient"


class MessageKind(enum.Enum):
    DOCUMENT = "document"
    STATUS = "status"


# From a checkout (no install), the schemas are the repository's top-level folder.
_SOURCE_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# libxml2 compiles schemas with includes unsafely when threads race (the axis validates in
# worker threads and once failed with XMLSchemaParseError), and lxml does not promise that a
# validator may be shared between threads: compile under a lock, keep one set per thread.
_COMPILE_LOCK = threading.Lock()
_PER_THREAD = threading.local()


def load_schema(kind: MessageKind, mode: SchemaMode) -> etree.XMLSchema:
    """One of the four shipped schemas, compiled once per thread."""
    cache: dict[tuple[MessageKind, SchemaMode], etree.XMLSchema] = _PER_THREAD.__dict__.setdefault("schemas", {})
    schema = cache.get((kind, mode))
    if schema is None:
        with _COMPILE_LOCK:
            schema = cache[(kind, mode)] = _compile(f"{kind.value}-{mode.value}.xsd")
    return schema


def _compile(name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        shipped = resources.files("gateway.schemas") / name
    except ModuleNotFoundError:
        return etree.XMLSchema(etree.parse(str(_SOURCE_SCHEMAS / name), parser))
    with resources.as_file(shipped) as path:
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
