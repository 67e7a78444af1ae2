"""Format-layer benchmark: build+sign and parse+validate+verify, beside bare signxml.

    python bench/format.py            # table, then one JSON line
    python bench/format.py --quick    # shorter runs

Sizes are those of the unsigned document (the signature adds about 3 KB). Every
operation runs in a fresh process that first loads only its own input; its peak RSS
growth is the peak during the runs minus the resident memory before them. "signxml
bare" signs the same unsigned bytes with one enveloped whole-document RSA-SHA256
signature and verifies that with a pinned certificate: the cost of XMLDSig alone,
without our schema, structure, coverage and chain checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KIB = 1024
SIZES = {"5KB": 5 * KIB, "1MB": 1024 * KIB, "20MB-attachment": 20 * 1024 * KIB}
OPERATIONS = ("ours_build_sign", "signxml_bare_sign", "ours_parse_validate_verify", "signxml_bare_verify")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_mib() -> float:
    """The highest resident memory since :func:`start_peak` (VmHWM)."""
    return _status_mib("VmHWM")


def start_peak() -> float:
    """Resident memory now, the baseline, with the peak reset to it (Linux): a transient peak
    while the input was loaded is not the operation's."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return _status_mib("VmRSS")


def make_document(payload: bytes):
    from datetime import date, datetime

    from gateway import edxml

    return edxml.Document(
        sender=edxml.Organization(edxml.AgencyCode("000.00.00.H58"), organ_name="UBND tỉnh Tiền Giang"),
        to=(edxml.Organization(edxml.AgencyCode("000.00.11.H58"), organ_name="Sở Nội vụ"),),
        subject="Về việc đo hiệu năng lớp định dạng edXML",
        document_id="000.00.00.H58,2026/11/25,1/UBND-VP",
        code=edxml.Code("1", "UBND-VP"),
        promulgation_info=edxml.PromulgationInfo("Mỹ Tho", date(2026, 11, 25)),
        content="Nội dung trích yếu của văn bản dùng để đo.",
        trace_headers=(edxml.TraceHeader(edxml.AgencyCode("000.00.00.H58"), datetime(2026, 11, 25, 8, 0, 0)),),
        business=edxml.Business(paper=False),
        attachments=(edxml.Attachment("scan-1", "Bản scan.pdf", payload, content_type="application/pdf"),),
    )


def payload_for(target: int) -> bytes:
    """Random attachment bytes sized so the unsigned document is about `target` bytes."""
    from gateway import edxml

    overhead = len(edxml.build(make_document(b"")))
    return os.urandom(max(0, (target - overhead) * 3 // 4))


def prepare(folder: Path, size: int) -> None:
    from lxml import etree
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner

    from gateway import edxml
    from gateway.edxml.xmlsafe import new_parser, parse_xml
    from gateway.pki import create_ca, issue

    ca = create_ca()
    pair = issue(ca, "000.00.00.H58")
    payload = payload_for(size)
    document = make_document(payload)
    identity = edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem)
    (folder / "payload.bin").write_bytes(payload)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "agency.key").write_bytes(pair.key_pem)
    (folder / "agency.pem").write_bytes(pair.cert_pem)
    unsigned = edxml.build(document)
    (folder / "unsigned.edxml").write_bytes(unsigned)
    (folder / "signed.edxml").write_bytes(edxml.sign_message(document, identity))
    signer = _bare_signer(XMLSigner, new_parser)(
        signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256
    )
    bare = signer.sign(parse_xml(unsigned), key=pair.key, cert=[pair.certificate])
    (folder / "bare.edxml").write_bytes(etree.tostring(bare))


def _bare_signer(base, new_parser):
    class BareSigner(base):
        parser = property(lambda self: new_parser())  # signxml's own parser refuses text nodes over 10 MB

    return BareSigner


def measure(folder: Path, operation: str, seconds: float) -> dict:
    from cryptography import x509
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier

    from gateway import edxml
    from gateway.edxml.xmlsafe import new_parser, parse_xml

    identity = edxml.SigningIdentity.from_pem(
        (folder / "agency.key").read_bytes(), (folder / "agency.pem").read_bytes()
    )
    trust = edxml.TrustStore.from_pem((folder / "ca.pem").read_bytes())
    if operation == "ours_build_sign":
        document = make_document((folder / "payload.bin").read_bytes())

        def work() -> object:
            return edxml.sign_message(document, identity)
    elif operation == "ours_parse_validate_verify":
        signed = (folder / "signed.edxml").read_bytes()

        def work() -> object:
            return edxml.validate(signed, trust=trust)
    elif operation == "signxml_bare_sign":
        unsigned = (folder / "unsigned.edxml").read_bytes()
        signer_class = _bare_signer(XMLSigner, new_parser)

        def work() -> object:
            signer = signer_class(
                signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256
            )
            return signer.sign(parse_xml(unsigned), key=identity.key, cert=[identity.certificate])
    else:
        bare = (folder / "bare.edxml").read_bytes()
        certificate: x509.Certificate = identity.certificate

        def work() -> object:
            return XMLVerifier().verify(parse_xml(bare), x509_cert=certificate, parser=new_parser())

    baseline = start_peak()
    count, start = 0, time.perf_counter()
    while True:
        work()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            break
    return {
        "per_second": round(count / elapsed, 1),
        "ms": round(elapsed / count * 1000, 2),
        "peak_rss_growth_mib": round(peak_rss_mib() - baseline, 1),
        "runs": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 0.5 s per operation instead of 2 s")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "OPERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 2.0
    if args.measure:
        folder, operation = Path(args.measure[0]), args.measure[1]
        print(json.dumps(measure(folder, operation, seconds)))
        return
    results = []
    for case, size in SIZES.items():
        with tempfile.TemporaryDirectory() as temp:
            folder = Path(temp)
            prepare(folder, size)
            result: dict = {
                "case": case,
                "unsigned_bytes": (folder / "unsigned.edxml").stat().st_size,
                "signed_bytes": (folder / "signed.edxml").stat().st_size,
            }
            for operation in OPERATIONS:
                command = [sys.executable, __file__, "--measure", str(folder), operation]
                command += ["--quick"] if args.quick else []
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result[operation] = json.loads(out.splitlines()[-1])
            results.append(result)
    header = f"{'case':<17}{'operation':<30}{'per s':>9}{'ms/op':>10}{'peak RSS +MiB':>15}"
    print(header)
    print("-" * len(header))
    for result in results:
        for operation in OPERATIONS:
            figures = result[operation]
            print(
                f"{result['case']:<17}{operation:<30}{figures['per_second']:>9}{figures['ms']:>10}"
                f"{figures['peak_rss_growth_mib']:>15}"
            )
    print(json.dumps({"benchmark": "format", "results": results}))


if __name__ == "__main__":
    main()
