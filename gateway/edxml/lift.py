"""Long runs of base64 kept out of the lxml tree: the *lifted* form of a large message.

Why: a 20 MB scan is 27 MB of base64 in one text node. In the tree, libxml2 canonicalises
it one character at a time for the digest, lxml copies it into a Python string to decode
it, and serialising writes it once more: six to seven copies of the message and most of
the CPU of a large document (docs/performance.md). None of that work needs the text to be
in the tree: it only needs to stand somewhere the tree can point at.

So, before parsing, each long run of base64 between a ``>`` and the next ``<`` is cut out
of the bytes and replaced by a short *token*; the tree is built from the small rest (the
*skeleton*). Whoever reads the tree afterwards asks :class:`Lifted` for the run behind a
token: the digest code feeds it to the hash in pieces, the attachment reader decodes it
from the original bytes, the writer splices it back when the message is written out.

Why the result is exact, not an approximation: a run is made only of the base64 alphabet
and XML blanks, characters that the parser passes through unchanged wherever they stand
(text, CDATA, a comment or a processing instruction; never an attribute value, which
cannot hold ``<``), and that exclusive c14n writes out unchanged (it escapes only ``&``,
``<``, ``>`` and carriage returns). So the canonical form of any part equals the canonical
form of its skeleton with each token replaced by its run, and the signature sees the same
bytes as it would on the whole tree. Carriage returns, which the parser turns into line
feeds, are turned into line feeds in the run the same way. A token carries as many line
feeds as its run so that line numbers in error messages stay those of the original file.

A token may only stand as the whole text of an ``edXML:ContentTransferEncoded`` element;
if the parsed skeleton has one anywhere else (base64 in a Subject, in a comment), the
message is parsed whole instead, as before: lifting never changes what a reader sees.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pybase64
from lxml import etree

from gateway.edxml import ns

MIN_RUN = 64 * 1024  # shorter text costs the tree less than the bookkeeping would
LIFT_FROM = 256 * 1024  # messages smaller than this are parsed whole, as they always were
CHUNK = 1024 * 1024  # pieces in which a run is hashed, decoded or written
_ENCODE_CHUNK = 3 * 256 * 1024  # raw bytes per piece when encoding: a multiple of 3 keeps pieces joinable

_CLASS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\t\n\r "
_BLANKS = b"\t\n\r "
# Encodings in which every byte below 0x80 is the ASCII character: a run found in the bytes
# is the same run in the text. Any other (UTF-16, ISO-2022-JP, EBCDIC) is parsed whole.
_ASCII_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"})
_DECLARED_ENCODING = re.compile(rb"""\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass(frozen=True)
class Run:
    """One lifted run: its canonical text (what the parser would have made of it), in pieces."""

    token: str
    size: int  # bytes of canonical text
    pieces: Callable[[], Iterator[bytes | memoryview]]
    view: memoryview | None = None  # the canonical text in one piece, when it stands so in the source
    # What the run decodes to, when checking it was decoding it (one unbroken line of base64):
    # the reader of the attachment takes it from here instead of decoding a second time.
    decoded: bytes | None = None

    def whole(self) -> bytes | memoryview:
        """The canonical text in one buffer: a view of the source when possible, else one copy."""
        return self.view if self.view is not None else b"".join(self.pieces())


@dataclass(frozen=True)
class Lifted:
    """The runs cut out of one message, by token. Empty for a message that was not lifted."""

    runs: dict[str, Run] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs)

    def run_of(self, element: etree._Element) -> Run | None:
        """The run an element's text stands for, or None for ordinary text."""
        return self.runs.get(element.text or "") if self.runs else None

    def expand(self, data: bytes) -> Iterator[bytes | memoryview]:
        """``data`` (serialised or canonicalised skeleton) in pieces, each token replaced by its run."""
        if not self.runs:
            yield data
            return
        position = 0
        for match in self._pattern.finditer(data):
            yield data[position : match.start()]
            yield from self.runs[match.group().decode("ascii")].pieces()
            position = match.end()
        yield data[position:]

    def feed(self, update: Callable[[bytes | memoryview], object], data: bytes) -> None:
        for piece in self.expand(data):
            update(piece)

    def join(self, data: bytes) -> bytes:
        return b"".join(self.expand(data))

    def restore(self, root: etree._Element) -> None:
        """Put every run back into the tree as text: for code that needs the whole tree (signxml)."""
        for element in root.iter(ns.q("ContentTransferEncoded")):
            run = self.run_of(element)
            if run is not None:
                element.text = bytes(run.whole())

    @property
    def _pattern(self) -> re.Pattern[bytes]:
        return re.compile(b"|".join(re.escape(token.encode("ascii")) for token in self.runs))


NOT_LIFTED = Lifted()


@dataclass(frozen=True)
class Expansion:
    """A serialised skeleton and its runs: the whole message, in pieces, as often as it is iterated."""

    lifted: Lifted
    skeleton: bytes

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return self.lifted.expand(self.skeleton)


def _token_factory() -> Callable[[int], str]:
    nonce = secrets.token_hex(8)  # unguessable: a sender cannot plant a token in its message
    counter = iter(range(1 << 30))
    return lambda newlines: f"@edxml-run-{nonce}-{next(counter)}@" + "\n" * newlines


# --- reading: cut the runs out of a message's bytes ------------------------------------------------------


def lift(data: bytes | bytearray, *, min_run: int = MIN_RUN) -> tuple[bytes | bytearray, Lifted]:
    """The skeleton of ``data`` and its runs; (data, NOT_LIFTED) when there is nothing to lift.

    The runs are views of ``data``, which must not change while the Lifted is in use.
    """
    if len(data) < max(LIFT_FROM, min_run) or not _ascii_compatible(data):
        return data, NOT_LIFTED
    spans = _find_runs(data, min_run)
    if not spans:
        return data, NOT_LIFTED
    token = _token_factory()
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    runs: dict[str, Run] = {}
    position = 0
    for start, end, decoded in spans:
        run = _source_run(view[start:end], has_cr=data.find(b"\r", start, end) >= 0)
        text = token(_line_feeds_in(data, start, end) if run.view is not None else run.whole().count(b"\n"))
        parts += [view[position:start], text.encode("ascii")]
        runs[text] = Run(text, run.size, run.pieces, run.view, decoded)
        position = end
    parts.append(view[position:])
    return b"".join(parts), Lifted(runs)


def _ascii_compatible(data: bytes | bytearray) -> bool:
    """UTF-8 (with or without its BOM) or a declared ASCII-compatible encoding."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data[start : start + 1] != b"<":
        return False  # UTF-16 and the like begin otherwise
    if not data.startswith(b"<?xml", start):
        return True  # no declaration: UTF-8
    end = data.find(b"?>", start)
    declared = _DECLARED_ENCODING.search(data, start, end) if end > 0 else None
    return end > 0 and (declared is None or declared.group(1).decode("ascii").lower() in _ASCII_ENCODINGS)


def _line_feeds_in(data: bytes | bytearray, start: int, end: int) -> int:
    # find() is a memchr; count() reads every byte more slowly, and our own base64 has no line feeds
    return 0 if data.find(b"\n", start, end) < 0 else data.count(b"\n", start, end)


def _find_runs(data: bytes | bytearray, min_run: int) -> list[tuple[int, int, bytes | None]]:
    """Spans of at least ``min_run`` base64 characters and blanks between a ``>`` and a ``<``.

    Only stretches without ``<`` longer than ``min_run`` are looked at, found by jumping a
    window of that length at a time: a message of many small elements costs a few hundred
    searches, not one per element, and hostile input cannot make it loop per character.
    """
    spans: list[tuple[int, int, bytes | None]] = []
    size = len(data)
    position = 0
    while position + min_run <= size:
        last_open = data.rfind(b"<", position, position + min_run)
        if last_open >= 0:
            position = last_open + 1
            continue
        end = data.find(b"<", position + min_run)
        if end < 0:
            break  # text after the last tag is outside any element: nothing to lift
        start = data.rfind(b">", position, end) + 1
        if start > 0 and end - start >= min_run:
            decoded = _decoded(data, start, end)
            if decoded is not None or _is_run(data, start, end):
                spans.append((start, end, decoded))
        position = end + 1
    return spans


def _decoded(data: bytes | bytearray, start: int, end: int) -> bytes | None:
    """The bytes of one unbroken line of strict base64 (the usual attachment), else None.

    Strict decoding accepts only the base64 alphabet, so success also proves the span is a
    run, at the cost of the decoding the reader would have done anyway.
    """
    if (end - start) % 4:
        return None
    try:
        return pybase64.b64decode(memoryview(data)[start:end], validate=True)
    except ValueError:
        return None


def _is_run(data: bytes | bytearray, start: int, end: int) -> bool:
    """Only base64 characters and blanks, and at least one that is not a blank."""
    seen_character = False
    for offset in range(start, end, CHUNK):
        piece = data[offset : min(offset + CHUNK, end)]
        if piece.translate(None, _CLASS):
            return False
        seen_character = seen_character or bool(piece.translate(None, _BLANKS))
    return seen_character


def _source_run(view: memoryview, *, has_cr: bool) -> Run:
    """The run standing at ``view`` (its token is set by the caller)."""
    if not has_cr:
        return Run("", len(view), lambda: (view[i : i + CHUNK] for i in range(0, len(view), CHUNK)), view)
    size = sum(len(piece) for piece in _line_feeds(view))
    return Run("", size, lambda: _line_feeds(view))


def _line_feeds(view: memoryview) -> Iterator[bytes]:
    """The run as the parser reads it: CR LF and a lone CR each become LF (XML 1.0 §2.11)."""
    carried = b""
    for offset in range(0, len(view), CHUNK):
        piece = carried + bytes(view[offset : offset + CHUNK])
        carried = b"\r" if piece.endswith(b"\r") else b""
        if carried:
            piece = piece[:-1]
        yield piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if carried:
        yield b"\n"


def check_placement(root: etree._Element, lifted: Lifted) -> bool:
    """True when every token is the whole text of an attachment's edXML:ContentTransferEncoded
    (root/AttachmentEncoded/Attachment/ContentTransferEncoded), the only place a run is read from."""
    placed = 0
    for element in root.iter(ns.q("ContentTransferEncoded")):
        if lifted.run_of(element) is None:
            continue
        attachment = element.getparent()
        container = None if attachment is None else attachment.getparent()
        if (
            container is None
            or container.getparent() is not root
            or etree.QName(attachment).localname != "Attachment"
            or etree.QName(container).localname != "AttachmentEncoded"
        ):
            return False
        placed += 1
    return placed == len(lifted.runs)


# --- writing: a message built with its attachments left out of the tree -----------------------------------


def encoded_run(token: str, data: bytes | memoryview) -> Run:
    """A run that is the base64 of ``data``, one unbroken line, encoded piece by piece when asked."""
    view = memoryview(data)

    def pieces() -> Iterator[bytes]:
        for offset in range(0, len(view), _ENCODE_CHUNK):
            yield pybase64.b64encode(view[offset : offset + _ENCODE_CHUNK])

    return Run(token, 4 * -(-len(view) // 3), pieces)


class Builder:
    """Hands out tokens for the attachments of a message being built."""

    def __init__(self) -> None:
        self._token = _token_factory()
        self.runs: dict[str, Run] = {}

    def add(self, data: bytes | memoryview) -> str:
        token = self._token(0)
        self.runs[token] = encoded_run(token, data)
        return token

    def lifted(self) -> Lifted:
        return Lifted(dict(self.runs)) if self.runs else NOT_LIFTED
