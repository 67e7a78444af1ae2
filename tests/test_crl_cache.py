"""The CRL cache (gateway/revocation.py) against a real `edxml-gateway pki serve` process and
a hostile HTTP server on 127.0.0.1: fetched once, kept on disk until due, never hammered, and
every bad answer a clear reason instead of an exception."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from gateway import edxml, logs, pki_folder
from gateway.edxml.revocation import RevocationPolicy, RevocationState
from gateway.pki import KeyPair, Revoked, create_ca, issue, make_crl
from gateway.processes import Service
from gateway.revocation import CrlCache, Revocation
from tests.e2e.province import free_port
from tests.messages import DEPARTMENT, PROVINCE, full_document, full_status


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, Service]]:
    """A three-level development PKI whose CRLs `pki serve` publishes."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path / "pki"
    pki_folder.init_dir(folder, crl_url=url)
    service = Service(
        ["pki", "serve", "--dir", str(folder), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        log_path=tmp_path / "crl.log",
    )
    service.wait_for(lambda e: e.get("event") == "crl_serving", "the CRL server to listen")
    yield folder, url, service
    service.stop()


def fetch(cache: CrlCache, *urls: str):
    async def go():
        try:
            return await cache.get(urls)
        finally:
            await cache.close()

    return asyncio.run(go())


def test_fetched_once_then_read_from_disk_until_due(tmp_path, served):
    folder, url, service = served
    cache_folder = tmp_path / "crls"
    crls, problems = fetch(CrlCache(cache_folder, log=logs.get("test")), f"{url}/intermediate.crl")
    assert not problems and len(crls) == 1
    assert crls[0].der == (folder / "crl" / "intermediate.crl").read_bytes()
    assert len(list(cache_folder.glob("*.crl"))) == 1
    service.stop()  # the CA's server gone: a gateway started again still has the CRL
    again, problems = fetch(CrlCache(cache_folder, log=logs.get("test")), f"{url}/intermediate.crl")
    assert not problems and again[0].der == crls[0].der


def test_a_revocation_is_seen_when_the_crl_is_due_again(tmp_path, served):
    folder, url, _ = served
    pki_folder.issue_to_dir(folder, "000.00.00.H58")
    pki_folder.write_crls(folder, days=0.0001)  # 8.6 s: refetched within its last quarter
    cache = CrlCache(tmp_path / "crls", log=logs.get("test"))

    async def go():
        try:
            first, _ = await cache.get([f"{url}/intermediate.crl"])
            pki_folder.revoke(folder, "000.00.00.H58")
            unchanged, _ = await cache.get([f"{url}/intermediate.crl"])
            assert unchanged[0].der == first[0].der  # cached: not fetched for every message
            await asyncio.sleep(max(0.0, (first[0].refresh_at() - datetime.now(UTC)).total_seconds()) + 0.2)
            await cache.refresh_due()
            refreshed, _ = await cache.get([f"{url}/intermediate.crl"])
            return first[0], refreshed[0]
        finally:
            await cache.close()

    first, refreshed = asyncio.run(go())
    assert refreshed.der != first.der and refreshed.this_update >= first.this_update


def test_an_unreachable_server_is_tried_once_a_minute_not_once_a_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/intermediate.crl"
    said = Said()
    cache = CrlCache(tmp_path / "crls", log=said, timeout=2)

    async def go():
        try:
            return [await cache.get([url]) for _ in range(5)]
        finally:
            await cache.close()

    outcomes = asyncio.run(go())
    assert [event for event, _ in said.lines] == ["crl_unavailable"]  # one attempt for five messages
    assert said.lines[0][1]["retry_in"] == 60.0
    for crls, problems in outcomes:
        assert crls == [] and "cannot be fetched" in problems[url]


class Said:
    """A log that keeps what it was told (the cache's only way of saying it tried)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def info(self, event: str, **facts) -> None:
        self.lines.append((event, facts))

    warning = info


@contextmanager
def hostile_server(routes: dict[str, web.Response | bytes], hits: list[str] | None = None) -> Iterator[str]:
    """An HTTP server answering each path with the given bytes or response, in its own thread
    (``routes`` may change while it runs); ``hits`` collects the paths asked for."""
    port = free_port()
    ready = threading.Event()
    stop: list[asyncio.AbstractEventLoop] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        if hits is not None:
            hits.append(request.path)
        found = routes[request.path]
        if isinstance(found, bytes):
            return web.Response(body=found)
        if found.status == 599:  # the stream that never ends
            response = web.StreamResponse()
            await response.prepare(request)
            while True:
                await response.write(b"\x00" * 65536)
        return found

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop.append(loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", answer)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop[0].call_soon_threadsafe(stop[0].stop)
        thread.join(10)


def test_hostile_answers_are_reasons_not_exceptions(tmp_path, served):
    folder, _, _ = served
    real = (folder / "crl" / "intermediate.crl").read_bytes()
    routes = {
        "/garbage.crl": b"<html>not a CRL</html>",
        "/truncated.crl": real[: len(real) // 2],
        "/missing.crl": web.Response(status=404),
        "/redirect.crl": web.Response(status=302, headers={"Location": "http://169.254.169.254/"}),
        "/endless.crl": web.Response(status=599),
    }
    with hostile_server(routes) as base:
        cache = CrlCache(tmp_path / "crls", log=logs.get("test"), timeout=5, max_bytes=1024 * 1024)
        urls = [base + path for path in routes]
        crls, problems = fetch(cache, *urls)
    assert crls == []
    assert "did not return a CRL" in problems[f"{base}/garbage.crl"]
    assert "did not return a CRL" in problems[f"{base}/truncated.crl"]
    assert "HTTP 404" in problems[f"{base}/missing.crl"]
    assert "HTTP 302" in problems[f"{base}/redirect.crl"]
    assert "more than 1048576 bytes" in problems[f"{base}/endless.crl"]
    assert not list((tmp_path / "crls").glob("*.crl"))  # nothing half-written or bogus kept


def test_an_expired_crl_is_kept_but_reported(tmp_path, served):
    folder, _, _ = served
    now = datetime.now(UTC)
    issuing = pki_folder.load_issuer(folder)
    stale = make_crl(issuing, this_update=now - timedelta(days=8), next_update=now - timedelta(days=1))
    with hostile_server({"/stale.crl": stale}) as base:
        crls, problems = fetch(CrlCache(tmp_path / "crls", log=logs.get("test")), f"{base}/stale.crl")
    assert len(crls) == 1 and "expired on" in problems[f"{base}/stale.crl"]


def test_a_signer_listed_in_a_crl_is_revoked_even_after_others_under_its_ca_were_judged_good(tmp_path, served):
    """What is remembered of a good path (its CAs, the CRLs) must never pass a listed signer."""
    folder, _, _ = served
    for code in (PROVINCE, DEPARTMENT):
        pki_folder.issue_to_dir(folder, code)
    pki_folder.revoke(folder, DEPARTMENT)
    trust = edxml.TrustStore.from_pem((folder / "ca.pem").read_bytes())

    def signature(code: str, message) -> edxml.SignatureVerdict:
        identity = edxml.SigningIdentity.from_pem(
            (folder / f"{code}.key").read_bytes(), (folder / f"{code}.pem").read_bytes()
        )
        return edxml.validate(edxml.sign_message(message, identity), trust=trust).signature

    good, revoked = signature(PROVINCE, full_document()), signature(DEPARTMENT, full_status(sender=DEPARTMENT))
    revocation = Revocation(RevocationPolicy.HARD, CrlCache(tmp_path / "crls", log=Said()))

    async def go():
        try:
            return [(await revocation.judge_signature(s, None)).state for s in (good, revoked, good, revoked)]
        finally:
            await revocation.close()

    assert asyncio.run(go()) == ["good", "revoked", "good", "revoked"]


def hierarchy_under(base: str) -> tuple:
    """Root → issuing CA → two agencies, their CRLs named under ``base``."""
    since = datetime.now(UTC) - timedelta(days=10)
    root = create_ca("Root CA", not_before=since)
    issuing = create_ca("Issuing CA", issuer=root, crl_url=f"{base}/root.crl", not_before=since)
    trust = edxml.TrustStore.from_pem(root.cert_pem)
    verdicts = []
    for code, message in ((PROVINCE, full_document()), (DEPARTMENT, full_status(sender=DEPARTMENT))):
        pair = issue(issuing, code, crl_url=f"{base}/issuing.crl", not_before=since)
        identity = edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem + issuing.cert_pem)
        verdicts.append(edxml.validate(edxml.sign_message(message, identity), trust=trust).signature)
    return root, issuing, verdicts


def test_a_crl_naming_its_ca_in_another_case_still_revokes_after_a_good_path_is_remembered(tmp_path):
    """RFC 5280 compares names without regard to case; what is remembered of a good path must
    not be fooled by a CRL that spells its CA's name otherwise (found in review)."""
    routes: dict = {}
    with hostile_server(routes) as base:
        root, issuing, (good, revoked) = hierarchy_under(base)
        shouted = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ISSUING CA")])
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(shouted)
            .last_update(datetime.now(UTC) - timedelta(minutes=1))
            .next_update(datetime.now(UTC) + timedelta(days=1))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(revoked.certificate.serial_number)
                .revocation_date(datetime.now(UTC) - timedelta(hours=1))
                .build()
            )
            .sign(issuing.key, hashes.SHA256())
        )
        routes["/root.crl"] = make_crl(root)
        routes["/issuing.crl"] = crl.public_bytes(serialization.Encoding.DER)
        revocation = Revocation(RevocationPolicy.HARD, CrlCache(tmp_path / "crls", log=Said()))

        async def go():
            try:
                return [(await revocation.judge_signature(s, None)).state for s in (good, revoked)]
            finally:
                await revocation.close()

        assert asyncio.run(go()) == ["good", "revoked"]


def test_a_crl_due_for_refresh_is_fetched_once_in_the_background_not_for_every_message(tmp_path):
    """In its last quarter a CRL is due; a CA that publishes only at nextUpdate serves the same
    one: asked once, then not before a minute, and no message waits for it (found in review)."""
    hits: list[str] = []
    routes: dict = {}
    with hostile_server(routes, hits) as base:
        _, issuing, _ = hierarchy_under(base)
        now = datetime.now(UTC)
        routes["/issuing.crl"] = make_crl(
            issuing, this_update=now - timedelta(hours=3), next_update=now + timedelta(minutes=30)
        )
        cache = CrlCache(tmp_path / "crls", log=Said())

        async def go():
            try:
                for _ in range(6):
                    crls, problems = await cache.get([f"{base}/issuing.crl"])
                    assert len(crls) == 1 and not problems
                    await asyncio.sleep(0.05)
            finally:
                await cache.close()

        asyncio.run(go())
    assert hits == ["/issuing.crl", "/issuing.crl"]  # the first fetch, and one refresh: not six


def test_an_older_crl_served_later_never_replaces_the_one_held(tmp_path):
    """A stale mirror, or an old CRL replayed over plain HTTP, must not undo a revocation."""
    routes: dict = {}
    with hostile_server(routes) as base:
        _, issuing, (_, revoked) = hierarchy_under(base)
        now = datetime.now(UTC)
        listing = [Revoked(revoked.certificate.serial_number, now - timedelta(hours=1))]
        # in its last quarter: due, so the refresh below does fetch
        routes["/issuing.crl"] = make_crl(
            issuing, listing, number=7, this_update=now - timedelta(hours=3), next_update=now + timedelta(minutes=30)
        )
        said = Said()
        cache = CrlCache(tmp_path / "crls", log=said)

        async def go():
            try:
                (held,), _ = await cache.get([f"{base}/issuing.crl"])
                routes["/issuing.crl"] = make_crl(issuing, [], number=6)  # older, says nothing is revoked
                await cache.refresh_due()
                (after,), _ = await cache.get([f"{base}/issuing.crl"])
                return held, after
            finally:
                await cache.close()

        held, after = asyncio.run(go())
    assert after.der == held.der and after.number == 7
    assert [event for event, _ in said.lines].count("crl_older_than_held") == 1


def test_what_the_bridge_brings_down_is_judged_when_the_upstream_accepted_it(tmp_path, served):
    """A provincial axis checks what its bridge fetches from the national one: a sender revoked
    after the national axis accepted the document still counts (the rule a gateway applies),
    one revoked before does not (found in review: the bridge judged at the moment it fetched)."""
    from gateway.axis import config as axis_config
    from gateway.axis.checks import MessageCheck
    from gateway.axis.wire import Refusal
    from gateway.vxp.vocabulary import MessageType

    folder, _, _ = served
    pki_folder.issue_to_dir(folder, PROVINCE)
    identity = edxml.SigningIdentity.from_pem(
        (folder / f"{PROVINCE}.key").read_bytes(), (folder / f"{PROVINCE}.pem").read_bytes()
    )
    data = edxml.sign_message(full_document(), identity)
    accepted = time.time()
    time.sleep(2)  # a CRL dates a revocation to the second, judged within a second's tolerance
    pki_folder.revoke(folder, PROVINCE)
    (tmp_path / "axis.toml").write_text(
        '[server]\nhost = "127.0.0.1"\nport = 0\ndata_dir = "d"\ncode = "000.00.00.H58"\n'
        f'verify_signatures = true\ntrust = "{folder / "ca.pem"}"\nrevocation = "hard"\n',
        encoding="utf-8",
    )
    check = MessageCheck(
        axis_config.load(tmp_path / "axis.toml"), edxml.TrustStore.from_pem((folder / "ca.pem").read_bytes())
    )
    checked = check(data, MessageType.EDOC, "0" * 64)

    async def go() -> list[str]:
        outcomes = []
        try:
            for moment in (accepted, None):  # the upstream's acceptance; now, as a sender's sendEdoc
                try:
                    await check.judge_revocation(checked, moment)
                    outcomes.append("accepted")
                except Refusal as refusal:
                    outcomes.append(refusal.detail or "")
        finally:
            await check.revocation.close()
        return outcomes

    before, now = asyncio.run(go())
    assert before == "accepted"
    assert "SIG210" in now


def test_a_forged_crl_is_never_kept_so_it_cannot_pin_the_cache(tmp_path):
    """Over plain HTTP anyone on the way can answer: a CRL not signed by the CA whose
    certificates name its address is refused, whatever CRL number it claims, and the CA's own
    is taken afterwards (found in review: one forged answer with a huge number stayed for good)."""
    routes: dict = {}
    with hostile_server(routes) as base:
        root, issuing, (_, revoked) = hierarchy_under(base)
        stranger = create_ca("Issuing CA")  # the same name, another key
        routes["/root.crl"] = make_crl(root)
        routes["/issuing.crl"] = make_crl(KeyPair(stranger.key, issuing.certificate), number=10**9)
        said = Said()
        revocation = Revocation(RevocationPolicy.SOFT, CrlCache(tmp_path / "crls", log=said))
        listing = [Revoked(revoked.certificate.serial_number, datetime.now(UTC) - timedelta(hours=1))]

        async def go():
            try:
                first = await revocation.judge_signature(revoked, None)
                routes["/issuing.crl"] = make_crl(issuing, listing, number=2)  # the CA's own
                revocation.cache._next_try.clear()  # a minute later, as far as the cache knows
                second = await revocation.judge_signature(revoked, None)
                return first, second
            finally:
                await revocation.close()

        first, second = asyncio.run(go())
    assert first.state is RevocationState.UNKNOWN and "not signed by" in first.detail
    assert second.state is RevocationState.REVOKED


def test_a_ca_renewed_under_a_new_key_at_the_same_crl_address_is_still_believed(tmp_path):
    """The issuing CA is renewed with a new key and keeps its CRL's address: once a signer
    under the renewed CA is judged, the CRL its new key signs is taken (found in review: the
    first CA seen for an address was the only one believed, and every later CRL refused)."""
    routes: dict = {}
    with hostile_server(routes) as base:
        root, issuing, (good, _) = hierarchy_under(base)
        since = datetime.now(UTC) - timedelta(days=1)
        renewed = create_ca("Issuing CA", issuer=root, crl_url=f"{base}/root.crl", not_before=since)
        pair = issue(renewed, PROVINCE, crl_url=f"{base}/issuing.crl", not_before=since)
        identity = edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem + renewed.cert_pem)
        trust = edxml.TrustStore.from_pem(root.cert_pem)
        later = edxml.validate(edxml.sign_message(full_document(), identity), trust=trust).signature
        routes["/root.crl"] = make_crl(root)
        routes["/issuing.crl"] = make_crl(issuing, number=1)
        revocation = Revocation(RevocationPolicy.SOFT, CrlCache(tmp_path / "crls", log=Said()))
        listing = [Revoked(later.certificate.serial_number, datetime.now(UTC) - timedelta(hours=1))]

        async def go():
            try:
                before = await revocation.judge_signature(good, None)
                routes["/issuing.crl"] = make_crl(renewed, listing, number=2)  # the renewed CA's key
                revocation.cache._next_try.clear()
                revocation.cache._crls.clear()  # due again, as far as the cache knows
                for kept in (tmp_path / "crls").iterdir():
                    kept.unlink()
                return before, await revocation.judge_signature(later, None)
            finally:
                await revocation.close()

        before, after = asyncio.run(go())
    assert before.state is RevocationState.GOOD
    assert after.state is RevocationState.REVOKED, after.detail
