"""Shared fixtures: real keys and certificates made by the project's own PKI code, and
rich example messages covering the fields of the model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from gateway import edxml
from gateway.edxml import (
    Document,
    StatusMessage,
)
from gateway.pki import KeyPair, create_ca, issue
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

# the hand-made signatures' helpers assert as tests do: their failures said as pytest says them
pytest.register_assert_rewrite("tests.edxml.forgery")

settings.register_profile("ci", deadline=None, max_examples=150, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.register_profile("fuzz", deadline=None, max_examples=20_000)  # long runs: HYPOTHESIS_PROFILE=fuzz
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
INTEROP = REPO.parent / "shared" / "interop"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    agencies: dict[str, KeyPair]
    folder: Path

    def identity(self, code: str) -> edxml.SigningIdentity:
        pair = self.agencies[code]
        return edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem)

    @property
    def trust(self) -> edxml.TrustStore:
        return edxml.TrustStore.from_pem(self.ca.cert_pem)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A development CA with certificates for a province, a department and a ministry,
    also written to a folder in the layout of `edxml-gateway pki`."""
    folder = tmp_path_factory.mktemp("pki")
    ca = create_ca()
    agencies = {
        PROVINCE: issue(ca, PROVINCE, "UBND tỉnh Tiền Giang"),
        DEPARTMENT: issue(ca, DEPARTMENT, "Sở Nội vụ tỉnh Tiền Giang", use_ec=True),
        MINISTRY: issue(ca, MINISTRY, "Văn phòng Chính phủ"),
    }
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    for code, pair in agencies.items():
        (folder / f"{code}.pem").write_bytes(pair.cert_pem)
        (folder / f"{code}.key").write_bytes(pair.key_pem)
    return Pki(ca, agencies, folder)


@pytest.fixture
def document() -> Document:
    return full_document()


@pytest.fixture
def status() -> StatusMessage:
    return full_status()
