"""How an edXML element is read: children by local name with their count checked, text
with no markup inside, typed values whose errors name the element and its line; and the
fixed frame every message has (Envelope)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from lxml import etree

from gateway.edxml import ns
from gateway.edxml.agency import AgencyCode
from gateway.edxml.text import clean
from gateway.errors import AgencyCodeError, InvalidValue, StructureError

T = TypeVar("T")
_EDXML_PREFIX = f"{{{ns.EDXML}}}"


def where(el: etree._Element) -> str:
    return f"line {el.sourceline}, element {ns.pretty(el.tag)}"


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


class Children:
    """The element children of one element, grouped by local name.

    Every child must be in the edXML namespace and among ``allowed``; order is free.
    """

    def __init__(self, el: etree._Element, allowed: frozenset[str], *, foreign: frozenset[str] = frozenset()):
        self.el = el
        self.groups: dict[str, list[etree._Element]] = {}
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):  # comments, processing instructions
                continue
            # the local name from lxml's "{namespace}local" form: a QName object per child
            # was a tenth of reading a status message
            if tag.startswith(_EDXML_PREFIX):
                name = tag[len(_EDXML_PREFIX) :]
                known = name in allowed or tag in foreign
            else:
                name = tag.rpartition("}")[2]
                known = tag in foreign
            if not known:
                raise StructureError(f"{ns.pretty(tag)} is not allowed in {ns.pretty(el.tag)}", where=where(child))
            self.groups.setdefault(name, []).append(child)

    def many(self, name: str) -> list[etree._Element]:
        return self.groups.get(name, [])

    def opt(self, name: str) -> etree._Element | None:
        found = self.many(name)
        if len(found) > 1:
            raise StructureError(
                f"{ns.pretty(self.el.tag)} has {len(found)} edXML:{name} elements, at most one is allowed",
                where=where(found[1]),
            )
        return found[0] if found else None

    def one(self, name: str) -> etree._Element:
        found = self.opt(name)
        if found is None:
            raise StructureError(f"{ns.pretty(self.el.tag)} lacks edXML:{name}", where=where(self.el))
        return found

    def text(self, name: str) -> str | None:
        found = self.opt(name)
        return None if found is None else read_text(found)

    def required_text(self, name: str) -> str:
        value = read_text(self.one(name))
        if not value:
            raise StructureError(f"edXML:{name} is empty", where=where(self.one(name)))
        return value

    def typed(self, name: str, convert: Callable[[str], T]) -> T | None:
        """Converted text of an optional element; empty counts as absent."""
        found = self.opt(name)
        if found is None:
            return None
        value = read_text(found)
        if value == "":
            return None
        return converted(found, value, convert)

    def texts(self, name: str) -> tuple[str, ...]:
        return tuple(read_text(el) for el in self.many(name))


def read_text(el: etree._Element) -> str:
    """The value of a text-only element, NFC and trimmed, as every reader here sees it."""
    text_only(el)
    return clean(el.text or "")


def text_only(el: etree._Element) -> None:
    """A value element holds text and nothing else.

    Not even a comment: signatures canonicalise comments away, so text split by one could
    be cut or extended without breaking the signature, while a reader joining or stopping
    at the comment would read something else than what was signed.
    """
    for child in el:
        if isinstance(child.tag, str):
            raise StructureError(f"{ns.pretty(el.tag)} must hold text, not elements", where=where(child))
        raise StructureError(
            f"{ns.pretty(el.tag)} holds a comment or processing instruction inside its value", where=where(el)
        )


def integer(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def non_negative(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"{text!r} is not 0/1 or true/false")


def agency_value(text: str) -> AgencyCode:
    return AgencyCode.lenient(text)


def strip_cid(value: str) -> str:
    """``cid:209`` and ``209`` name the same attachment (facts §1.3)."""
    value = value.strip()
    if value[:4].lower() == "cid:":
        value = value[4:]
    return value.strip().strip("<>")


def checked(el: etree._Element, convert: Callable[[str], T]) -> T:
    return converted(el, read_text(el), convert)


def converted(el: etree._Element, value: str, convert: Callable[[str], T]) -> T:
    """convert(value), with the element and line added to whatever it refuses."""
    try:
        return convert(value)
    except AgencyCodeError as exc:
        raise AgencyCodeError(exc.message, where=where(el)) from None
    except ValueError as exc:
        raise InvalidValue(str(exc), where=where(el)) from None


class Envelope:
    """The fixed frame of every edXML message: root, envelope, header, body, attachments."""

    def __init__(self, root: etree._Element):
        if root.tag != ns.q("edXML"):
            raise StructureError(
                f"root element is {ns.pretty(root.tag)}, expected edXML in namespace {ns.EDXML}", where=where(root)
            )
        top = Children(root, frozenset({"edXMLEnvelope", "AttachmentEncoded"}))
        self.root = root
        self.envelope = top.one("edXMLEnvelope")
        self.attachment_encoded = top.opt("AttachmentEncoded")
        env = Children(self.envelope, frozenset({"edXMLHeader", "edXMLBody"}))
        self.header = env.one("edXMLHeader")
        self.body = env.opt("edXMLBody")
        head = Children(
            self.header,
            frozenset({"MessageHeader", "TraceHeaderList", "Signature", "DigitalSignature"}),
            foreign=frozenset({f"{{{ns.DSIG}}}Signature"}),
        )
        self.message_header = head.one("MessageHeader")
        self.trace_header_list = head.opt("TraceHeaderList")
        signatures = head.many("Signature") + head.many("DigitalSignature")
        if len(signatures) > 1:
            raise StructureError("edXMLHeader holds more than one signature", where=where(signatures[1]))
        self.signature = signatures[0] if signatures else None

    @property
    def is_status(self) -> bool:
        return any(isinstance(child.tag, str) and child.tag == ns.q("StatusCode") for child in self.message_header)
