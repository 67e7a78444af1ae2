"""What a key on a PKCS#11 token costs per signature, against the same key in a PEM file
(issue 19). SoftHSM2 is the token (software; a USB token is slower, an HSM faster).

    python bench/signing_token.py [--count N]

For RSA-2048 and ECDSA P-256: the bare signature (cryptography's call, or the token's through
python-pkcs11), and a whole status message 01 built and signed (what the gateway does for every
document it receives). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gateway import edxml, pki_folder
from tests.messages import full_status
from tests.softhsm import MODULES, make_token

CODES = {"rsa": "000.00.00.H58", "ec": "000.00.11.H58"}


def per_call_ms(action, count: int) -> float:
    action()  # first call outside the timing (session warm-up)
    started = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    if not any(path.is_file() for path in MODULES):
        sys.exit("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    work = Path(tempfile.mkdtemp(prefix="bench-token-"))
    pki = work / "pki"
    pki_folder.init_dir(pki)
    for kind, code in CODES.items():
        pki_folder.issue_to_dir(pki, code, use_ec=kind == "ec")
    token = make_token(work / "hsm", "bench", {kind: pki / f"{code}.key" for kind, code in CODES.items()})
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    from gateway.token_keys import TokenSession, TokenSettings, token_key

    rows = {}
    for kind, code in CODES.items():
        cert_pem = (pki / f"{code}.pem").read_bytes()
        in_file = edxml.SigningIdentity.from_pem((pki / f"{code}.key").read_bytes(), cert_pem)
        session = TokenSession(TokenSettings(token.module, token.label, kind, token.pin_file.read_text().strip()))
        public = x509.load_pem_x509_certificates(cert_pem)[0].public_key()
        on_token = edxml.SigningIdentity.from_key(token_key(session, public), cert_pem)
        probe = b"x" * 200
        status = full_status(sender=code)
        for where, identity in (("file", in_file), ("token", on_token)):
            key = identity.key
            if isinstance(key, rsa.RSAPrivateKey):
                bare = functools.partial(key.sign, probe, padding.PKCS1v15(), hashes.SHA256())
            else:
                bare = functools.partial(key.sign, probe, ec.ECDSA(hashes.SHA256()))
            whole = functools.partial(edxml.sign_message, status, identity)
            rows[f"{kind}_{where}"] = {
                "signature_ms": round(per_call_ms(bare, args.count), 3),
                "signed_status_ms": round(per_call_ms(whole, max(args.count // 3, 1)), 3),
            }
    print(f"{'key':<12}{'signature ms':>14}{'signed 01 ms':>14}")
    for name, row in rows.items():
        print(f"{name:<12}{row['signature_ms']:>14.3f}{row['signed_status_ms']:>14.3f}")
    print(json.dumps({"count": args.count, **rows}))


if __name__ == "__main__":
    main()
