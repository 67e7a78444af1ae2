"""The quarter replay's floor (bench/replay/floor.py): the format work of its messages, measured
with real keys, and what it comes to per delivery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.replay import floor, shape
from gateway.pki import create_ca, issue


@pytest.fixture(scope="module")
def province():
    return shape.build()


def test_the_floor_is_measured_on_signed_and_checked_messages(tmp_path, province):
    ca = create_ca("floor test CA", not_before=datetime(2023, 1, 1, tzinfo=UTC), days=3650)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    for code in floor._two_installations(province):
        pair = issue(ca, code, province.agencies[code].name, not_before=datetime(2023, 1, 1, tzinfo=UTC), days=3650)
        (tmp_path / f"{code}.key").write_bytes(pair.key_pem)
        (tmp_path / f"{code}.pem").write_bytes(pair.cert_pem)

    measured = floor.measure(tmp_path, province, samples=3)

    # each is real work: RSA-2048 signing alone takes a good part of a millisecond
    for milliseconds in (measured.document_signed, measured.status_signed):
        assert milliseconds > 0.1
    assert measured.document_checked > 0 and measured.status_checked > 0


def test_two_installations_of_the_province_sign_in_the_floor(province):
    first, second = floor._two_installations(province)
    assert first != second
    for code in (first, second):
        assert not province.installations[code].outside


def test_a_documents_signing_is_shared_by_its_deliveries():
    costs = floor.Floor(document_signed=4.0, document_checked=1.0, status_signed=0.5, status_checked=0.25)
    # 2 documents to 8 deliveries: each delivery pays a quarter of a signing, its own check,
    # and its statuses (20 of them over the 8: its 01 and the answers) signed and checked
    assert costs.per_delivery(documents=2, deliveries=8, statuses=20) == pytest.approx(1.0 + 1.0 + 20 * 0.75 / 8)
