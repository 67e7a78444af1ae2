"""What revocation checking costs per received message (issue 19), by the size of the CA's CRL.

    python bench/revocation.py [--entries 0,1000,30000] [--signers 200]

For each CRL size: the first signer judged under a new CRL (pyhanko-certvalidator reads the
whole CRL), then every further signer under the same CA (one lookup in the CRL; what a
gateway pays for almost every message), and a signer the CRL lists (a full judgement again;
the same signer again: remembered).
The CRLs are put in the cache folder as a fetch would have left them, so no server is needed.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import edxml, logs
from gateway.edxml.revocation import RevocationPolicy, RevocationState
from gateway.pki import Revoked, create_ca, issue, make_crl
from gateway.revocation import CrlCache, Revocation
from tests.messages import PROVINCE, full_document

ROOT_URL, ISSUING_URL = "http://127.0.0.1:9/root.crl", "http://127.0.0.1:9/intermediate.crl"


def signatures(count: int) -> tuple[list[edxml.SignatureVerdict], object, object]:
    since = datetime.now(UTC) - timedelta(days=30)
    root = create_ca("Root", not_before=since, use_ec=True)
    issuing = create_ca("Issuing", issuer=root, crl_url=ROOT_URL, not_before=since, use_ec=True)
    trust = edxml.TrustStore.from_pem(root.cert_pem)
    document = full_document()
    found = []
    for _ in range(count):
        # a certificate each (its own serial), all for the document's sender
        agency = issue(issuing, PROVINCE, crl_url=ISSUING_URL, use_ec=True, not_before=since)
        identity = edxml.SigningIdentity.from_pem(agency.key_pem, agency.cert_pem + issuing.cert_pem)
        found.append(edxml.validate(edxml.sign_message(document, identity), trust=trust).signature)
    return found, root, issuing


async def measure(entries: int, verdicts, root, issuing, folder: Path) -> dict:
    listed = verdicts[-1].certificate.serial_number
    revoked = [Revoked(10_000_000 + i, datetime.now(UTC) - timedelta(days=1)) for i in range(entries)]
    revoked.append(Revoked(listed, datetime.now(UTC) - timedelta(days=1)))
    cache = CrlCache(folder, log=logs.get("bench"))
    folder.mkdir(parents=True)
    for url, data in ((ROOT_URL, make_crl(root)), (ISSUING_URL, make_crl(issuing, revoked))):
        cache._path(url).write_bytes(data)  # as a fetch leaves it
    revocation = Revocation(RevocationPolicy.HARD, cache)
    started = time.perf_counter()
    first = await revocation.judge_signature(verdicts[0], None)
    first_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for verdict in verdicts[1:-1]:
        assert (await revocation.judge_signature(verdict, None)).state is RevocationState.GOOD
    further_ms = (time.perf_counter() - started) * 1000 / max(len(verdicts) - 2, 1)
    started = time.perf_counter()
    last = await revocation.judge_signature(verdicts[-1], None)
    listed_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    again = await revocation.judge_signature(verdicts[-1], None)
    again_ms = (time.perf_counter() - started) * 1000
    assert first.state is RevocationState.GOOD and last.state is again.state is RevocationState.REVOKED
    await revocation.close()
    return {
        "crl_entries": entries + 1,
        "crl_bytes": cache._path(ISSUING_URL).stat().st_size,
        "first_ms": round(first_ms, 2),
        "further_ms": round(further_ms, 3),
        "listed_ms": round(listed_ms, 2),
        "listed_again_ms": round(again_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", default="0,1000,30000")
    parser.add_argument("--signers", type=int, default=200)
    args = parser.parse_args()
    verdicts, root, issuing = signatures(args.signers)
    work = Path(tempfile.mkdtemp(prefix="bench-revocation-"))
    rows = [asyncio.run(measure(int(n), verdicts, root, issuing, work / f"crls-{n}")) for n in args.entries.split(",")]
    print(f"{'CRL entries':>12}{'CRL bytes':>11}{'first ms':>10}{'further ms':>12}{'listed ms':>11}{'again ms':>10}")
    for row in rows:
        print(
            f"{row['crl_entries']:>12}{row['crl_bytes']:>11}{row['first_ms']:>10.1f}"
            f"{row['further_ms']:>12.3f}{row['listed_ms']:>11.1f}{row['listed_again_ms']:>10.3f}"
        )
    print(json.dumps({"signers": args.signers, "rows": rows}))


if __name__ == "__main__":
    main()
