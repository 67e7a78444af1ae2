"""SoftHSM2 tokens for tests: a token initialised in a folder of the test's, development keys
imported into it with softhsm2-util, as an admin imports an agency's key into a real token.

.ci/run installs Debian's softhsm2 and sets EDXML_REQUIRE_SOFTHSM=1, so that there a missing
SoftHSM2 fails the tests that need it instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
PIN, SO_PIN = "246810", "97531086"


def module_or_skip() -> Path:
    found = next((path for path in MODULES if path.is_file()), None)
    if found is None or shutil.which("softhsm2-util") is None:
        import pytest  # here only: the benchmarks use this module from an installation without it

        if os.environ.get("EDXML_REQUIRE_SOFTHSM"):
            pytest.fail("SoftHSM2 is required here (EDXML_REQUIRE_SOFTHSM) but is not installed")
        pytest.skip("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    return found


@dataclass(frozen=True)
class SoftToken:
    module: Path
    conf: Path
    tokens: Path  # the folder SoftHSM2 keeps this token in (moved away: the token is "pulled out")
    label: str
    pin_file: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def toml(self, key_label: str) -> str:
        return (
            "\n[signing.pkcs11]\n"
            f'module = "{self.module}"\n'
            f'token_label = "{self.label}"\n'
            f'key_label = "{key_label}"\n'
            f'pin_file = "{self.pin_file}"\n'
        )


def make_token(folder: Path, label: str, keys: dict[str, Path], *, spare: str | None = None) -> SoftToken:
    """A token labelled ``label`` in ``folder``, holding each PKCS#8 PEM key of ``keys`` under its
    label; ``spare``: a second, empty token beside it (one SoftHSM2 configuration per process)."""
    module = module_or_skip()
    tokens = folder / "tokens"
    tokens.mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def util(*args: str) -> None:
        done = subprocess.run(["softhsm2-util", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    util("--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN)
    if spare is not None:
        util("--init-token", "--free", "--label", spare, "--pin", PIN, "--so-pin", SO_PIN)
    for index, (key_label, pem) in enumerate(keys.items(), start=1):
        util("--import", str(pem), "--token", label, "--label", key_label, "--id", f"{index:04x}", "--pin", PIN)
    pin_file = folder / "pin.txt"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return SoftToken(module, conf, tokens, label, pin_file)
