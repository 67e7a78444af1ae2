"""What refusing a hostile flood costs: time and memory, each case in a fresh process.

    python bench/floods.py            # table, then one JSON line

Each case takes a validly signed document (the province's, 1 attachment) and adds what an
attacker would to its unsigned envelope: namespace declarations, comments, processing
instructions; "at the limit" cases are what [limits] still lets through, to show the
worst an accepted message costs. The figures are wall time of `edxml.validate` and the
growth of peak resident memory during it (the input already loaded).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.format import peak_rss_mib, start_peak

ENVELOPE = b"<edXML:edXMLEnvelope"


def _declarations(count: int, start: int = 0) -> bytes:
    return b"".join(b' xmlns:n%d="urn:x:%d"' % (k, k) for k in range(start, start + count))


def _on_first_elements(data: bytes, elements: int, per_element: int) -> bytes:
    """``per_element`` declarations on each of the first ``elements`` start tags."""
    out, at = bytearray(), 0
    for n in range(elements):
        start = data.index(b"<", at)
        while data[start + 1 : start + 2] in (b"?", b"!", b"/"):
            start = data.index(b"<", start + 1)
        end = start + 1
        while data[end : end + 1] not in (b" ", b">", b"/"):
            end += 1
        out += data[at:end] + _declarations(per_element, n * per_element)
        at = end
    return bytes(out + data[at:])


def _in_envelope_tag(data: bytes, extra: bytes) -> bytes:
    at = data.index(ENVELOPE) + len(ENVELOPE)
    return data[:at] + extra + data[at:]


def _after_envelope_tag(data: bytes, extra: bytes) -> bytes:
    at = data.index(b">", data.index(ENVELOPE)) + 1
    return data[:at] + extra + data[at:]


CASES = {
    "valid, as signed": lambda d: d,
    "namespaces 10,000 on the envelope": lambda d: _in_envelope_tag(d, _declarations(10_000)),
    "namespaces 80,000 on the envelope": lambda d: _in_envelope_tag(d, _declarations(80_000)),
    "namespaces 63 on each of 15 elements (at the limit)": lambda d: _on_first_elements(d, 15, 63),
    "relative namespace URI": lambda d: _in_envelope_tag(d, b' xmlns:r="relative/path"'),
    "comments 3,000,000": lambda d: _after_envelope_tag(d, b"<!---->" * 3_000_000),
    "processing instructions 3,000,000": lambda d: _after_envelope_tag(d, b"<?p?>" * 3_000_000),
    "comments 10,000 (at the limit)": lambda d: _after_envelope_tag(d, b"<!---->" * 10_000),
}


def run_case(name: str) -> dict[str, object]:
    from gateway import edxml
    from gateway.errors import GatewayError
    from gateway.pki import create_ca, issue
    from tests.messages import full_document

    ca = create_ca("bench CA")
    pair = issue(ca, "000.00.00.H58")
    identity = edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem)
    trust = edxml.TrustStore.from_pem(ca.cert_pem)
    data = CASES[name](edxml.sign_message(full_document(attachments=1), identity))
    base = start_peak()
    started = time.perf_counter()
    try:
        edxml.validate(data, trust=trust)
        outcome = "valid"
    except GatewayError as exc:
        outcome = exc.code
    seconds = time.perf_counter() - started
    return {
        "case": name,
        "bytes": len(data),
        "ms": round(seconds * 1000, 1),
        "peak_mib": round(peak_rss_mib() - base, 1),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    rows = []
    for name in CASES:
        done = subprocess.run(
            [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True, timeout=600
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'case':52} {'size':>10} {'ms':>9} {'peak MiB':>9}  outcome")
    for row in rows:
        print(f"{row['case']:52} {row['bytes']:>10,} {row['ms']:>9} {row['peak_mib']:>9}  {row['outcome']}")
    print(json.dumps({"benchmark": "floods", "cases": rows}))


if __name__ == "__main__":
    main()
