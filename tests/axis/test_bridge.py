"""The provincial axis bridged to the national one: real axes and gateways on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest

from gateway import edxml
from gateway.axis_client import AxisClient
from gateway.errors import AxisError
from gateway.vxp.vocabulary import MessageType
from tests.axis.country import (
    DEPARTMENT,
    MINISTRY,
    NATIONAL_CODE,
    OTHER_PROVINCE,
    PROVINCE,
    PROVINCIAL_CODE,
    PROVINCIAL_SYSTEM,
    Country,
    build_country,
)
from tests.e2e.province import free_port, signed_by, to, wait_until
from tests.messages import full_document


@pytest.fixture
def country(tmp_path):
    built = build_country(tmp_path, national_port=free_port(), provincial_port=free_port())
    yield built
    built.stop_all()


def running(country: Country) -> Country:
    country.start_national()
    country.start_provincial()
    country.provincial.service.wait_for(lambda e: e.get("event") == "registered_upstream", "the registration")
    for code in country.agencies:
        country.start(code)
    return country


def job(recipients: list[str], subject: str, number: str) -> dict:
    return {"to": recipients, "subject": subject, "code_number": number, "code_notation": "UBND"}


def call(url: str, system_id: str, secret: str, work):
    async def go():
        async with AxisClient(url, system_id, secret) as client:
            return await work(client)

    return asyncio.run(go())


def test_documents_and_statuses_cross_the_bridge_both_ways(country):
    country = running(country)
    province, ministry = country.agencies[PROVINCE], country.agencies[MINISTRY]
    country.drop_job(PROVINCE, "j1", job([MINISTRY, DEPARTMENT], "Báo cáo tình hình", "1"), {"a.txt": b"x"})
    inside = wait_until(lambda: country.agencies[DEPARTMENT].delivered(), "the copy inside the province")
    outside = wait_until(lambda: ministry.delivered(), "the copy across the bridge")
    assert inside[0]["document_id"] == outside[0]["document_id"]
    # the sender's signature crossed intact (the ministry's gateway verified it), under both axes' trace
    envelope = next(p for p in ministry.inbox.iterdir() if not p.name.startswith(".")) / "envelope.edxml"
    hops = [hop.organ_id.text for hop in edxml.read_unchecked(envelope.read_bytes()).trace_headers]
    assert hops == [PROVINCE, PROVINCIAL_CODE, NATIONAL_CODE], hops
    receipts = wait_until(lambda: len(r := province.receipts()) == 2 and r, "both 01")
    assert {(code, status) for _, code, status in receipts} == {(MINISTRY, "01"), (DEPARTMENT, "01")}

    country.drop_job(MINISTRY, "j2", job([PROVINCE], "Chỉ thị của Thủ tướng", "2"), {"b.txt": b"y"})
    country.drop_job(OTHER_PROVINCE, "j3", job([DEPARTMENT], "Công văn phối hợp", "3"), {"c.txt": b"z"})
    wait_until(lambda: province.delivered(), "the ministry's document, down the bridge")
    wait_until(lambda: len(country.agencies[DEPARTMENT].delivered()) == 2, "another province's document")
    wait_until(lambda: ministry.receipts() and country.agencies[OTHER_PROVINCE].receipts(), "their 01, up")
    assert [(code, status) for _, code, status in ministry.receipts()] == [(PROVINCE, "01")]

    # the sender sees one DocId and each recipient's state, the outside one as the upstream says it
    secret = country.secrets[PROVINCE]
    url = country.provincial.url
    sent = wait_until(
        lambda: (
            {
                row["toCode"]: row["receiveStatus"]
                for row in call(url, f"sys-{PROVINCE}", secret, lambda c: c.sent_list(message_type=MessageType.EDOC))
            }
            == {MINISTRY: "done", DEPARTMENT: "done"}
        ),
        "every recipient done in getSentEdocList",
    )
    assert sent
    national = call(
        country.axis.url,
        PROVINCIAL_SYSTEM,
        country.secrets[PROVINCIAL_SYSTEM],
        lambda c: c.sent_list(message_type=MessageType.EDOC),
    )
    assert [row["toCode"] for row in national] == [MINISTRY], "forwarded to the local recipient too"


def test_the_directory_answers_for_the_whole_country(country):
    country = running(country)
    agencies = call(country.provincial.url, f"sys-{PROVINCE}", country.secrets[PROVINCE], lambda c: c.agencies())
    scopes = {a["code"]: a["scope"] for a in agencies}
    assert scopes[PROVINCE] == scopes[DEPARTMENT] == "local"
    assert scopes[MINISTRY] == scopes[OTHER_PROVINCE] == "upstream"
    national = call(country.axis.url, f"sys-{MINISTRY}", country.secrets[MINISTRY], lambda c: c.agencies())
    registered = {a["code"]: a for a in national}
    assert registered[DEPARTMENT]["pid"] == PROVINCE  # the province's agencies, under their parents
    # an agency registered upstream since: the provincial axis reads the national directory
    # anew and answers with it (not with the answer it encoded before)
    new_unit = "000.01.02.G22"
    call(
        country.axis.url,
        f"sys-{MINISTRY}",
        country.secrets[MINISTRY],
        lambda c: c.register_agency(new_unit, "Vụ Pháp chế", parent=MINISTRY),
    )
    wait_until(
        lambda: (
            new_unit
            in {
                a["code"]
                for a in call(
                    country.provincial.url, f"sys-{PROVINCE}", country.secrets[PROVINCE], lambda c: c.agencies()
                )
            }
        ),
        "the new national agency in the provincial directory",
        timeout=30,
    )
    # a recipient neither axis knows is refused at once, not accepted and lost upstream
    result = country.run(
        "send", "--config", str(country.agencies[PROVINCE].config), "--to", "000.00.00.H99", "--subject", "x"
    )
    assert result.returncode != 0 and "000.00.00.H99" in result.stderr


def test_a_recall_crosses_the_bridge_and_its_answer_comes_back(country):
    country = running(country)
    province, ministry = country.agencies[PROVINCE], country.agencies[MINISTRY]
    country.drop_job(PROVINCE, "qd", job([MINISTRY], "Quyết định ban hành nhầm", "9"), {"q.txt": b"q"})
    delivered = wait_until(lambda: ministry.delivered(), "the document at the ministry")
    document_id = delivered[0]["document_id"]
    recalled = country.run("recall", "--config", str(province.config), document_id, "--reason", "Ban hành nhầm")
    assert recalled.returncode == 0, recalled.stderr
    folder = next(p for p in ministry.inbox.iterdir() if not p.name.startswith("."))
    wait_until(lambda: list((folder / "events").glob("*-13.json")) if (folder / "events").is_dir() else [], "13")
    answered = country.run("respond", "--config", str(ministry.config), folder.name, "--code", "15")
    assert answered.returncode == 0, answered.stderr
    wait_until(lambda: (document_id, MINISTRY, "15") in province.receipts(), "the 15, back down the bridge")


def test_without_an_upstream_a_recipient_unknown_here_is_refused_as_before(country):
    """The same program runs the national mock: no [upstream], no forwarding, no scope."""
    country.start_national()
    secret = country.secrets[MINISTRY]
    agencies = call(country.axis.url, f"sys-{MINISTRY}", secret, lambda c: c.agencies())
    assert agencies and all("scope" not in a for a in agencies)
    letter = signed_by(country, MINISTRY, to(full_document(sender=MINISTRY), "000.00.00.H99"))

    async def send(client: AxisClient) -> str:
        try:
            return await client.send_edoc(letter, message_type=MessageType.EDOC, from_code=MINISTRY)
        except AxisError as exc:
            return exc.axis_code

    assert call(country.axis.url, f"sys-{MINISTRY}", secret, send) == "18"


def test_an_agency_registered_at_the_provincial_axis_is_registered_upstream_at_once(country):
    country = running(country)
    xa = "000.01.31.H58"

    async def register(client: AxisClient) -> None:
        await client.register_agency(xa, "UBND xã Hậu Thành", parent="000.00.31.H58")

    call(country.provincial.url, f"sys-{PROVINCE}", country.secrets[PROVINCE], register)
    national = wait_until(
        lambda: {
            a["code"]: a
            for a in call(country.axis.url, f"sys-{MINISTRY}", country.secrets[MINISTRY], lambda c: c.agencies())
        }.get(xa),
        "the xã at the national axis",
        timeout=20,
    )
    assert national["pid"] == "000.00.31.H58" and national["name"] == "UBND xã Hậu Thành"


def send_from_ministry(country: Country, document) -> str:
    letter = signed_by(country, MINISTRY, document)

    async def send(client: AxisClient) -> str:
        return await client.send_edoc(letter, message_type=MessageType.EDOC, from_code=MINISTRY)

    return call(country.axis.url, f"sys-{MINISTRY}", country.secrets[MINISTRY], send)


def test_documents_without_documentid_and_to_two_local_agencies_come_down_once_each(country):
    """Without a DocumentId a document is known by its content, here as upstream: two different
    ones are two documents; one to two agencies of the province is one document, two deliveries."""
    import dataclasses

    country = running(country)
    base = full_document(sender=MINISTRY)
    both = dataclasses.replace(
        base, to=(*to(base, PROVINCE).to, *to(base, DEPARTMENT).to), business=None, document_id="000.00.00.G22,x/2"
    )
    send_from_ministry(country, both)
    for subject in ("Công văn thứ nhất", "Công văn thứ hai"):
        send_from_ministry(country, to(base, DEPARTMENT, document_id=None, subject=subject))
    department, province = country.agencies[DEPARTMENT], country.agencies[PROVINCE]
    wait_until(lambda: len(department.delivered()) == 3 and province.delivered(), "every copy")
    time.sleep(1.0)
    assert sorted(d["subject"] for d in department.delivered()) == sorted(
        [both.subject, "Công văn thứ nhất", "Công văn thứ hai"]
    )
    assert [d["subject"] for d in province.delivered()] == [both.subject]
    for code in (DEPARTMENT, PROVINCE):
        events = (country.agencies[code].folder / "gateway.log").read_text(encoding="utf-8")
        assert "duplicate_dropped" not in events


def test_a_code_of_the_national_directory_cannot_be_taken_at_the_provincial_axis(country):
    country = running(country)

    async def register(client: AxisClient) -> str:
        try:
            await client.register_agency(MINISTRY, "Giả danh Văn phòng Chính phủ", parent=PROVINCE)
        except AxisError as exc:
            return exc.axis_code
        return "accepted"

    assert call(country.provincial.url, f"sys-{DEPARTMENT}", country.secrets[DEPARTMENT], register) == "19"
    country.drop_job(PROVINCE, "j", job([MINISTRY], "Vẫn tới Văn phòng Chính phủ", "5"), {"a.txt": b"x"})
    wait_until(lambda: country.agencies[MINISTRY].delivered(), "the document, at the real Government Office")


def test_a_routing_loop_and_a_recipient_unknown_everywhere_are_refused(country):
    country = running(country)
    letter = signed_by(country, PROVINCE, to(full_document(), "000.00.00.H99"))

    async def send(client: AxisClient, data: bytes, sender: str) -> str:
        try:
            return await client.send_edoc(data, message_type=MessageType.EDOC, from_code=sender)
        except AxisError as exc:
            return exc.axis_code

    url, secret = country.provincial.url, country.secrets[PROVINCE]
    assert call(url, f"sys-{PROVINCE}", secret, lambda c: send(c, letter, PROVINCE)) == "18"
    # a document that already passed through the provincial axis (its hop after the sender's)
    looped = dataclasses.replace(
        to(full_document(), MINISTRY, document_id=f"{PROVINCE},loop/2"),
        trace_headers=(
            *full_document().trace_headers[:1],
            edxml.TraceHeader(edxml.AgencyCode(PROVINCIAL_CODE), full_document().trace_headers[0].timestamp),
        ),
    )
    data = signed_by(country, PROVINCE, looped)
    assert call(url, f"sys-{PROVINCE}", secret, lambda c: send(c, data, PROVINCE)) == "21"
    country.provincial.service.wait_for(
        lambda e: e.get("event") == "request_refused" and "routing loop" in e.get("reason", ""), "the loop said"
    )


def test_an_upstream_that_refuses_us_is_said_with_the_hint_and_the_province_works_on(country):
    text = (country.root / "provincial" / "axis.toml").read_text(encoding="utf-8")
    (country.root / "provincial" / "upstream.secret").write_text("a-wrong-secret-of-32-characters!\n")
    country.start_national()
    country.start_provincial()
    refused = country.provincial.service.wait_for(lambda e: e.get("event") == "upstream_refuses_us", "the refusal")
    assert refused["axis_code"] == "15" and "[upstream] system_id and secret_file" in refused["hint"]
    assert "[upstream]" in text
    for code in (PROVINCE, DEPARTMENT):
        country.start(code)
    country.drop_job(PROVINCE, "inside", job([DEPARTMENT], "Trong tỉnh", "1"), {"a.txt": b"x"})
    wait_until(lambda: country.agencies[DEPARTMENT].delivered(), "the document inside the province")
    wait_until(lambda: country.agencies[PROVINCE].receipts(), "its 01")


def test_an_upstream_answering_garbage_is_survived(country, tmp_path):
    """Not an axis at all answers at the upstream's address: the bridge says so, asks at a
    bounded rate, and the province works on."""
    import http.server
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html>502 Bad Gateway</html>" if self.path.endswith("List") else b"\x00\xffnot json"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = country.root / "provincial" / "axis.toml"
        text = config.read_text(encoding="utf-8")
        start = text.index('url = "http://127.0.0.1:')
        end = text.index("\n", start)
        config.write_text(text[:start] + f'url = "http://127.0.0.1:{server.server_port}"' + text[end:], "utf-8")
        country.start_provincial()
        for code in (PROVINCE, DEPARTMENT):
            country.start(code)
        country.drop_job(PROVINCE, "inside", job([DEPARTMENT], "Trong tỉnh", "1"), {"a.txt": b"x"})
        wait_until(lambda: country.agencies[DEPARTMENT].delivered(), "the document inside the province")
        log = (country.root / "provincial" / "axis.log").read_text(encoding="utf-8")
        assert "upstream_unreachable" in log or "upstream_directory_refused" in log, log[-2000:]
        assert "Traceback" not in log
    finally:
        server.shutdown()


def test_a_message_from_upstream_for_an_agency_no_local_system_holds_stays_there(country):
    country = running(country)
    xa = "000.01.31.H58"
    secret = country.secrets[PROVINCE]

    async def register(client: AxisClient) -> None:
        await client.register_agency(xa, "UBND xã Hậu Thành", parent=PROVINCE)

    async def delete(client: AxisClient) -> None:
        await client.delete_agency(xa)

    call(country.provincial.url, f"sys-{PROVINCE}", secret, register)
    ministry_secret = country.secrets[MINISTRY]

    def national_codes() -> set[str]:
        return {a["code"] for a in call(country.axis.url, f"sys-{MINISTRY}", ministry_secret, lambda c: c.agencies())}

    wait_until(lambda: xa in national_codes(), "the xã registered upstream", timeout=20)
    call(country.provincial.url, f"sys-{PROVINCE}", secret, delete)  # gone here; still there upstream
    send_from_ministry(country, to(full_document(sender=MINISTRY), xa, document_id="000.00.00.G22,2026/9/UBND"))
    said = country.provincial.service.wait_for(lambda e: e.get("event") == "inbound_refused", "the refusal said")
    assert "not an agency of this axis" in said["reason"]
    time.sleep(3.0)  # the upstream lists it again after its retry delay (1 s here): said once all the same
    log = (country.root / "provincial" / "axis.log").read_text(encoding="utf-8")
    assert log.count('"inbound_refused"') == 1
    states = call(country.axis.url, f"sys-{MINISTRY}", ministry_secret, lambda c: c.sent_list(doc_id=None))
    assert [row["receiveStatus"] for row in states if row["toCode"] == xa] != ["done"]


def test_forwards_that_waited_for_the_upstream_go_up_several_a_call(country):
    """Our national axis takes several messages a sendEdoc: what queued at the provincial axis
    while it was away goes up in as few calls as fit, each delivered once, each 01 back."""
    country = running(country)
    province, ministry = country.agencies[PROVINCE], country.agencies[MINISTRY]
    country.drop_job(PROVINCE, "j0", job([MINISTRY], "Báo cáo tuần", "10"), {"a.txt": b"x"})
    wait_until(lambda: ministry.delivered(), "a first document across: the bridge hears what the upstream takes")
    country.axis.service.stop()
    for n in range(1, 5):
        country.drop_job(PROVINCE, f"j{n}", job([MINISTRY], f"Báo cáo số {n}", str(10 + n)), {"a.txt": b"x"})

    def queued() -> int:
        result = country.run("bridge", "--config", str(country.root / "provincial" / "axis.toml"), "--json")
        return json.loads(result.stdout)["forwards_queued"]

    wait_until(lambda: queued() == 4, "four forwards waiting for the upstream")
    country.start_national()
    batched = country.provincial.service.wait_for(
        lambda e: e.get("event") == "forwarded" and (e.get("batch") or 0) >= 2, "forwards carried several a call"
    )
    assert batched["peer"] == [MINISTRY]
    wait_until(lambda: len(ministry.delivered()) == 5, "every document delivered across the bridge")
    wait_until(lambda: len(province.receipts()) == 5, "every 01 back down")
    assert len({d["document_id"] for d in ministry.delivered()}) == 5
