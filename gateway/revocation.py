"""CRLs fetched over HTTP, kept on disk until their nextUpdate, refreshed before it, and applied
to signatures by ``[signing] revocation``: the I/O around :mod:`gateway.edxml.revocation`.

Used by the gateway (every signed message it receives) and by the axis when it verifies. A CRL
is public data: one cache serves every agency an installation hosts. A fetch that fails is not
tried again for RETRY_AFTER_FAILURE seconds, so a CA's server that is down costs one timeout a
minute, not one per message; meanwhile the last CRL fetched (even a stale one) is what counts.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.edxml.revocation import (
    NOT_CHECKED,
    RevocationPolicy,
    RevocationState,
    RevocationVerdict,
    chain_key,
    distribution_points,
    issuers_by_point,
    judge,
    names_crls,
)
from gateway.edxml.signature import SignatureVerdict
from gateway.fsutil import write_atomic

MAX_CRL_BYTES = 10 * 1024 * 1024  # a national CA's CRL is a few hundred KiB; 10 MiB is far past any
FETCH_TIMEOUT = 10.0
RETRY_AFTER_FAILURE = 60.0
REFRESH_BEFORE = timedelta(hours=1)  # fetched again this long before its nextUpdate (a quarter of a short life)
MAX_AGE = timedelta(hours=1)  # and at least this often: a revocation is seen within the hour
LIFE_WITHOUT_NEXT_UPDATE = timedelta(days=1)
MEMO_ENTRIES = 10_000


@dataclass(frozen=True)
class CachedCrl:
    url: str
    der: bytes = field(repr=False)
    this_update: datetime
    next_update: datetime
    parsed: x509.CertificateRevocationList = field(repr=False, compare=False)

    @functools.cached_property
    def number(self) -> int | None:
        try:
            return self.parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except (x509.ExtensionNotFound, ValueError):
            return None

    def order(self, other: CachedCrl) -> int:
        """-1, 0, 1: this CRL is older than, the same issue as, newer than ``other``, by their
        CRL numbers (RFC 5280: they only grow), or when either has none, their thisUpdate."""
        mine, theirs = (
            (self.number, other.number)
            if self.number is not None and other.number is not None
            else (self.this_update, other.this_update)
        )
        return (mine > theirs) - (mine < theirs)

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @functools.cached_property
    def _serials(self) -> frozenset[int] | None:
        try:
            return frozenset(entry.serial_number for entry in self.parsed)
        except ValueError:  # an entry that cannot be read
            return None

    def lists(self, certificate: x509.Certificate) -> bool:
        """Whether this CRL has an entry for ``certificate``'s serial: the serials read once per
        CRL, so that a path whose CAs were judged under this CRL skips certvalidator's scan of
        every entry. The issuer is not compared (names match by RFC 5280 rules cryptography
        does not apply: a CRL spelling its CA's name in another case still counts for it): a
        serial listed by any CRL of the set sends the path to a full judgement. Unreadable
        entries count as listing it."""
        serials = self._serials
        return serials is None or certificate.serial_number in serials

    def refresh_at(self) -> datetime:
        span = self.next_update - self.this_update
        return self.next_update - min(REFRESH_BEFORE, span / 4)

    def stale(self, now: datetime) -> bool:
        return now >= self.next_update


class CrlError(Exception):
    """A CRL could not be had: the reason, for the UNKNOWN verdict and the log."""


def read_crl(url: str, data: bytes) -> CachedCrl:
    """Parse a fetched or stored CRL (DER, or PEM as some CAs publish it)."""
    try:
        crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
        this_update = crl.last_update_utc
        next_update = crl.next_update_utc or this_update + LIFE_WITHOUT_NEXT_UPDATE
        der = crl.public_bytes(serialization.Encoding.DER)
    except Exception as exc:  # any bytes at all may come back from a URL
        raise CrlError(f"{url} did not return a CRL: {type(exc).__name__}: {exc}") from None
    return CachedCrl(url, der, this_update, next_update, crl)


class CrlCache:
    """CRLs by URL: in memory, on disk under ``folder``, fetched when missing or due.

    Due: a quarter of its life (at most REFRESH_BEFORE) before its nextUpdate, or MAX_AGE after
    it was fetched, whichever comes first, so that a revocation the CA publishes at once is
    seen within the hour even when its CRLs live a week. While a current copy is at hand, the
    fetch goes on in the background and messages do not wait for it. A fetch that fails, or
    brings nothing newer, is not tried again for RETRY_AFTER_FAILURE; a CRL older than the one
    held (a stale mirror, an old CRL replayed over plain HTTP) never replaces it.
    """

    def __init__(self, folder: Path, *, log: Any, timeout: float = FETCH_TIMEOUT, max_bytes: int = MAX_CRL_BYTES):
        self.folder = folder
        self.log = log
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._crls: dict[str, CachedCrl] = {}
        self._fetched_at: dict[str, float] = {}  # url → when it was last fetched (wall clock)
        self._next_try: dict[str, float] = {}  # url → no fetch before this (monotonic)
        self._failed: dict[str, str] = {}  # url → why its last fetch failed
        # url → the CAs whose CRL it may be: every certificate of that CA a trusted path showed
        # (a CA renewed under a new key keeps its CRL's address)
        self._issuers: dict[str, set[x509.Certificate]] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _path(self, url: str) -> Path:
        return self.folder / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.crl"

    async def get(
        self, urls: Iterable[str], issuers: Mapping[str, x509.Certificate] | None = None
    ) -> tuple[list[CachedCrl], dict[str, str]]:
        """The CRLs at ``urls`` (fetched first where missing or expired) and, for those that
        could not be had current, the reason. ``issuers``: the CA whose certificates name each
        URL: a CRL fetched from there must bear its signature to be kept (plain HTTP: anyone on
        the way could answer)."""
        urls = list(urls)
        for url, issuer in (issuers or {}).items():
            self._issuers.setdefault(url, set()).add(issuer)
        await asyncio.gather(*(self._ensure(url) for url in urls))
        now = datetime.now(UTC)
        found, problems = [], {}
        for url in urls:
            crl = self._crls.get(url)
            if crl is not None:
                found.append(crl)
            if crl is None or crl.stale(now):
                expired = f"the CRL at {url} expired on {crl.next_update:%Y-%m-%d %H:%M} UTC" if crl else ""
                problems[url] = self._failed.get(url) or expired or f"the CRL at {url} cannot be had"
        return found, problems

    def fresh(self, at: datetime | None = None) -> list[CachedCrl]:
        """The CRLs in memory that are current at ``at`` (now): what a PDF accepted then is
        judged with first, as a signature in the XML is (one expired since still counts)."""
        moment = at or datetime.now(UTC)
        return [crl for crl in self._crls.values() if not crl.stale(moment)]

    async def refresh_due(self) -> None:
        """Fetch again every known CRL that is due (the daemon's housekeeping), waiting for it."""
        await asyncio.gather(*(self._ensure(url, wait=True) for url in list(self._crls)))

    async def close(self) -> None:
        for task in list(self._fetching.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _due(self, url: str, crl: CachedCrl, now: datetime) -> bool:
        return now >= crl.refresh_at() or time.time() - self._fetched_at.get(url, 0.0) >= MAX_AGE.total_seconds()

    async def _ensure(self, url: str, *, wait: bool = False) -> None:
        crl = self._crls.get(url)
        if crl is None:
            crl = await asyncio.to_thread(self._load, url)
        now = datetime.now(UTC)
        if crl is not None and not self._due(url, crl, now):
            return
        if time.monotonic() < self._next_try.get(url, 0.0):
            return
        task = self._fetching.get(url)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(url))
            self._fetching[url] = task
            task.add_done_callback(lambda _: self._fetching.pop(url, None))
        if crl is None or crl.stale(now) or wait:
            await asyncio.shield(task)
        # else: the current copy serves this message; the fetch finishes in the background

    def _load(self, url: str) -> CachedCrl | None:
        path = self._path(url)
        try:
            crl = read_crl(url, path.read_bytes())
            fetched_at = path.stat().st_mtime
        except (OSError, CrlError):
            return None
        self._crls[url] = crl
        self._fetched_at[url] = fetched_at
        return crl

    def _wait(self, url: str) -> None:
        self._next_try[url] = time.monotonic() + RETRY_AFTER_FAILURE

    async def _fetch(self, url: str) -> None:
        started = time.monotonic()
        try:
            crl = read_crl(url, await self._download(url))
        except CrlError as exc:
            self._failed[url] = str(exc)
            self._wait(url)
            self.log.warning("crl_unavailable", url=url, reason=str(exc), retry_in=RETRY_AFTER_FAILURE)
            return
        issuers = self._issuers.get(url)
        if issuers and not _signed_by(crl, issuers):
            reason = f"{url} served a CRL not signed by {next(iter(issuers)).subject.rfc4514_string()}"
            self._failed[url] = reason
            self._wait(url)
            self.log.warning("crl_unavailable", url=url, reason=reason, retry_in=RETRY_AFTER_FAILURE)
            return
        self._fetched_at[url] = time.time()
        self._failed.pop(url, None)
        held = self._crls.get(url)
        if held is not None and issuers and not _signed_by(held, issuers):
            held = None  # what was kept is not its CA's (an earlier forgery, a file put there): replaced
        if held is not None and crl.order(held) <= 0:
            self._wait(url)  # nothing newer yet (the CA publishes at its nextUpdate): asked again later
            if crl.order(held) < 0:
                served, kept = crl.this_update.isoformat(), held.this_update.isoformat()
                self.log.warning("crl_older_than_held", url=url, served=served, held=kept)
        else:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(write_atomic, self._path(url), crl.der)
            except OSError as exc:  # kept in memory all the same; the disk is said
                self.log.warning("crl_not_stored", url=url, reason=f"{type(exc).__name__}: {exc}")
            self._crls[url] = held = crl
        if held.stale(datetime.now(UTC)):
            reason = f"the CRL at {url} expired on {held.next_update:%Y-%m-%d %H:%M} UTC and no newer one is served"
            self._failed[url] = reason
            self._wait(url)
            self.log.warning("crl_stale", url=url, next_update=held.next_update.isoformat())
        self.log.info(
            "crl_fetched",
            url=url,
            bytes=len(crl.der),
            next_update=crl.next_update.isoformat(),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _download(self, url: str) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise CrlError(f"{url} answered HTTP {response.status}")
                if (response.content_length or 0) > self.max_bytes:
                    raise CrlError(f"{url} offers {response.content_length} bytes; a CRL may have {self.max_bytes}")
                body = bytearray()
                async for piece in response.content.iter_chunked(65536):
                    body += piece
                    if len(body) > self.max_bytes:
                        raise CrlError(f"{url} sent more than {self.max_bytes} bytes; a CRL may have that many")
                return bytes(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise CrlError(f"{url} cannot be fetched: {type(exc).__name__}: {exc}") from None


class Revocation:
    """``[signing] revocation`` applied to a verified signature.

    certvalidator reads every entry of a CRL for each path it judges (0.5 s for a CRL of 30,000
    entries), so what it found is remembered: the CAs above a signer, judged good under a set
    of CRLs, stay good for every signer under them that the same CRLs do not list, and for
    every earlier moment (a CRL lists no revocation later than its own issue). A new signer
    costs one lookup in the CRL; a listed one, or a new set of CRLs, a full judgement.
    """

    def __init__(self, policy: RevocationPolicy, cache: CrlCache | None) -> None:
        self.policy = policy
        self.cache = cache
        self._good_above: dict[tuple[str, tuple[str, ...], tuple[str, ...]], None] = {}
        # paths found revoked now under a set of CRLs: revoked for every moment from then on (a
        # revoked signer sending again and again costs one judgement, not one each)
        self._revoked: dict[tuple[str, tuple[str, ...]], RevocationVerdict] = {}

    async def refresh(self) -> None:
        """Fetch again the CRLs close to their nextUpdate (housekeeping)."""
        if self.cache is not None:
            await self.cache.refresh_due()

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()

    async def judge_signature(self, signature: SignatureVerdict | None, at: datetime | None) -> RevocationVerdict:
        """The revocation verdict on a valid signature's path, at ``at`` (by default, now)."""
        if self.policy is RevocationPolicy.OFF or self.cache is None or signature is None or not signature.chain:
            return NOT_CHECKED
        chain = signature.chain
        urls = distribution_points(chain)
        if not urls:
            if not names_crls(chain):  # most paths of a PKI without CRLs: no thread hop for nothing
                return RevocationVerdict(RevocationState.NOT_CHECKED, "the certificates name no CRL distribution point")
            return await asyncio.to_thread(judge, chain, (), at=at or datetime.now(UTC))  # ldap: only: UNKNOWN
        crls, problems = await self.cache.get(urls, issuers_by_point(chain))
        # the CAs above the signer, where the signer's CRL is, and which CRLs were read
        above = (chain_key(chain[1:]), distribution_points(chain[:1]), tuple(sorted(crl.sha256 for crl in crls)))
        if not problems and above in self._good_above and not any(crl.lists(chain[0]) for crl in crls):
            return RevocationVerdict(RevocationState.GOOD, "not revoked")
        now = datetime.now(UTC)
        whole = (chain_key(chain), above[2])
        verdict = self._revoked.get(whole) if not problems else None
        ders = [crl.der for crl in crls]
        if verdict is None:
            verdict = await asyncio.to_thread(judge, chain, ders, at=now)
        if verdict.state is RevocationState.GOOD:
            _remember(self._good_above, above, None)
        elif verdict.state is RevocationState.REVOKED and verdict.revoked_at is not None:
            _remember(self._revoked, whole, verdict)
            if at is not None and at < verdict.revoked_at:  # accepted before: judged at that moment
                verdict = await asyncio.to_thread(judge, chain, ders, at=at)
        elif at is not None and at < now:
            # revoked now, or expired now: what counts is the moment the axis accepted it
            verdict = await asyncio.to_thread(judge, chain, ders, at=at)
        if verdict.state is RevocationState.UNKNOWN and problems:
            verdict = RevocationVerdict(RevocationState.UNKNOWN, "; ".join(problems.values()), transient=True)
        return verdict


def _signed_by(crl: CachedCrl, issuers: Iterable[x509.Certificate]) -> bool:
    """Whether one of ``issuers`` signed ``crl``."""
    for issuer in issuers:
        try:
            if crl.parsed.is_signature_valid(issuer.public_key()):
                return True
        except (TypeError, ValueError):  # a key of a kind CRLs are not signed with here
            continue
    return False


def _remember(memo: dict, key: object, value: object) -> None:
    if len(memo) >= MEMO_ENTRIES:
        memo.clear()
    memo[key] = value
