"""The signers' paths a trust store remembers: the same verdict as building the path again, and
never outside the period in which every certificate of the path is valid."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from gateway.edxml.certs import TrustStore, check_signer
from gateway.errors import CertificateExpired, UntrustedCertificate
from gateway.pki import create_ca, issue

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def authorities():
    root = create_ca("Root CA", not_before=NOW - timedelta(days=400), days=3650)
    # the issuing CA ends a year before its signers' certificates do
    issuing = create_ca("Issuing CA", issuer=root, not_before=NOW - timedelta(days=300), days=400)
    return root, issuing


def test_a_remembered_path_gives_the_same_signer_as_a_new_one(authorities):
    root, issuing = authorities
    leaf = issue(issuing, "000.00.31.H58", days=800).certificate
    remembering, fresh = TrustStore((root.certificate,)), TrustStore((root.certificate,))
    first = check_signer(leaf, remembering, offered=(issuing.certificate,))
    again = check_signer(leaf, remembering, offered=(issuing.certificate,))
    assert again == first == check_signer(leaf, fresh, offered=(issuing.certificate,))
    assert first.agency.text == "000.00.31.H58" and first.chain == (leaf, issuing.certificate, root.certificate)


def test_a_remembered_path_is_not_used_after_any_of_its_certificates_ends(authorities):
    root, issuing = authorities
    # valid from before NOW (the module's import), however long the suite ran before this test
    leaf = issue(issuing, "000.00.31.H58", days=800, not_before=NOW - timedelta(days=1)).certificate
    trust = TrustStore((root.certificate,))
    check_signer(leaf, trust, offered=(issuing.certificate,))
    # the leaf is still valid then; its issuing CA is not
    after_the_ca = issuing.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(CertificateExpired, match="issuing CA"):
        check_signer(leaf, trust, at=after_the_ca, offered=(issuing.certificate,))
    before_the_leaf = leaf.not_valid_before_utc - timedelta(minutes=1)
    with pytest.raises(CertificateExpired, match="not valid before"):
        check_signer(leaf, trust, at=before_the_leaf, offered=(issuing.certificate,))
    assert check_signer(leaf, trust, at=NOW, offered=(issuing.certificate,)).agency.text == "000.00.31.H58"


def test_a_path_is_remembered_for_the_certificates_offered_with_it(authorities):
    root, issuing = authorities
    leaf = issue(issuing, "000.00.31.H58", days=800).certificate
    trust = TrustStore((root.certificate,))
    check_signer(leaf, trust, offered=(issuing.certificate,))
    # the same signer, its KeyInfo without the issuing CA: no path, whatever was found before
    with pytest.raises(UntrustedCertificate, match="does not chain"):
        check_signer(leaf, trust, offered=())


def test_a_refused_signer_is_checked_again_each_time(authorities):
    root, _ = authorities
    stranger_ca = create_ca("Someone else's CA")
    stranger = issue(stranger_ca, "000.00.31.H58").certificate
    trust = TrustStore((root.certificate,))
    for _ in range(2):
        with pytest.raises(UntrustedCertificate):
            check_signer(stranger, trust, offered=(stranger_ca.certificate,))
    assert len(trust.paths) == 0


def test_the_paths_remembered_are_bounded(authorities):
    root, issuing = authorities
    trust = TrustStore((root.certificate,))
    trust.paths.limit = 2
    leaves = [issue(issuing, f"000.00.3{i}.H58").certificate for i in range(3)]
    for leaf in leaves:
        check_signer(leaf, trust, offered=(issuing.certificate,))
    assert len(trust.paths) == 2
    assert check_signer(leaves[0], trust, offered=(issuing.certificate,)).agency.text == "000.00.30.H58"


def test_a_trust_store_made_from_another_remembers_nothing_of_it(authorities):
    root, issuing = authorities
    leaf = issue(issuing, "000.00.31.H58").certificate
    trust = TrustStore((root.certificate,))
    check_signer(leaf, trust, offered=(issuing.certificate,))
    elsewhere = dataclasses.replace(trust, authorities=(create_ca("Another root").certificate,))
    assert len(elsewhere.paths) == 0
    with pytest.raises(UntrustedCertificate):
        check_signer(leaf, elsewhere, offered=(issuing.certificate,))
