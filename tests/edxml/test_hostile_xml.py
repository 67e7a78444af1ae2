"""Hostile XML is refused before it can read files, reach the network or eat memory."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from gateway import edxml
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, Limits, parse_xml
from gateway.errors import ForbiddenXML, LimitExceeded, MalformedXML, SchemaViolation, StructureError

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


class Listener:
    """A real TCP socket on 127.0.0.1 that counts who tried to connect."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.sock.close()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe: a parser that tried to read it would block, so the test would see it."""
    path = tmp_path / "secret"
    os.mkfifo(path)
    return path


def parse_in_thread(data: bytes, timeout: float = 20.0) -> BaseException | None:
    """Parse in a thread and give back what it raised; fail if it never returns (it tried to read a pipe)."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            parse_xml(data)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, "the parser did not return: it blocked on an external resource"
    return outcome[0]


def test_external_file_entity(fifo: Path):
    data = f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "file://{fifo}">]><edXML xmlns="{NS}">&x;</edXML>'
    assert isinstance(parse_in_thread(data.encode()), ForbiddenXML)


def test_external_network_entity_and_dtd(listener: Listener):
    url = f"http://127.0.0.1:{listener.port}/evil.dtd"
    for data in (
        f'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "{url}"><edXML xmlns="{NS}"/>',
        f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY % p SYSTEM "{url}"> %p;]><edXML xmlns="{NS}"/>',
        f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY x SYSTEM "{url}">]><edXML xmlns="{NS}">&x;</edXML>',
    ):
        assert isinstance(parse_in_thread(data.encode()), ForbiddenXML)
    assert listener.connections() == 0


def test_doctype_hidden_after_a_long_prolog_is_still_refused_and_not_fetched(listener: Listener, fifo: Path):
    padding = "<!--" + "x" * (DEFAULT_LIMITS.max_bytes // 1000) + "-->"
    for target in (f"http://127.0.0.1:{listener.port}/evil.dtd", f"file://{fifo}"):
        data = f'<?xml version="1.0"?>{padding}<!DOCTYPE edXML SYSTEM "{target}"><edXML xmlns="{NS}"/>'
        error = parse_in_thread(data.encode())
        assert isinstance(error, ForbiddenXML), error
    assert listener.connections() == 0


def test_billion_laughs():
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    data = f'<?xml version="1.0"?><!DOCTYPE edXML [{"".join(entities)}]><edXML xmlns="{NS}">&lol9;</edXML>'
    with pytest.raises(ForbiddenXML):
        parse_xml(data.encode())


def test_quadratic_blowup():
    big = "A" * 50_000
    data = f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "{big}">]><edXML xmlns="{NS}">{"&a;" * 50_000}</edXML>'
    with pytest.raises(ForbiddenXML):
        parse_xml(data.encode())


def test_internal_entity_is_refused_too():
    data = f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "b">]><edXML xmlns="{NS}">&a;</edXML>'
    with pytest.raises(ForbiddenXML):
        parse_xml(data.encode())


def test_undefined_entity_reference_is_malformed():
    with pytest.raises(MalformedXML):
        parse_xml(f'<edXML xmlns="{NS}">&undefined;</edXML>'.encode())


def test_deep_nesting_100000():
    data = f'<edXML xmlns="{NS}">' + "<a>" * 100_000 + "</a>" * 100_000 + "</edXML>"
    with pytest.raises(LimitExceeded):
        parse_xml(data.encode())


def test_nesting_just_over_our_own_limit():
    depth = DEFAULT_LIMITS.max_depth
    data = f'<edXML xmlns="{NS}">' + "<a>" * depth + "</a>" * depth + "</edXML>"
    with pytest.raises(LimitExceeded, match=f"deeper than {depth}"):
        parse_xml(data.encode())


def test_input_over_the_size_limit_is_refused_before_parsing():
    data = b" " * (DEFAULT_LIMITS.max_bytes + 1)
    with pytest.raises(LimitExceeded, match="limit"):
        parse_xml(data)


def test_too_many_elements():
    data = f'<edXML xmlns="{NS}">' + "<a/>" * 1000 + "</edXML>"
    with pytest.raises(LimitExceeded, match="more than 500 elements"):
        parse_xml(data.encode(), Limits(max_elements=500))


def test_xinclude_is_never_processed(fifo: Path):
    data = (
        f'<?xml version="1.0"?><edXML xmlns="{NS}" xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="file://{fifo}" parse="text"/></edXML>'
    )
    assert parse_in_thread(data.encode()) is None  # parsed as an ordinary element, nothing fetched
    with pytest.raises((SchemaViolation, StructureError)):
        edxml.read(data.encode())


def test_stylesheet_processing_instruction_is_not_fetched(listener: Listener):
    data = f'<?xml version="1.0"?><?xml-stylesheet href="http://127.0.0.1:{listener.port}/x.xsl"?><edXML xmlns="{NS}"/>'
    with pytest.raises((SchemaViolation, StructureError)):
        edxml.read(data.encode())
    assert listener.connections() == 0


def test_empty_and_non_bytes_input():
    with pytest.raises(MalformedXML):
        parse_xml(b"")
    with pytest.raises(TypeError):
        parse_xml("<edXML/>")  # type: ignore[arg-type]


def test_millions_of_tiny_elements_stop_at_the_limit_while_parsing():
    data = f'<edXML xmlns="{NS}">'.encode() + b"<a/>" * 2_000_000 + b"</edXML>"
    with pytest.raises(LimitExceeded, match=f"more than {DEFAULT_LIMITS.max_elements} elements"):
        parse_xml(data)


def test_attributes_are_counted():
    data = f'<edXML xmlns="{NS}">'.encode() + b'<a x="1" y="2"/>' * 600 + b"</edXML>"
    with pytest.raises(LimitExceeded, match="more than 1000 attributes"):
        parse_xml(data, Limits(max_attributes=1000))
