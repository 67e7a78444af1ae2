"""Three-level paths and revocation, sans-IO (issue 19): root → issuing CA → agency, the path
built from KeyInfo or configured intermediates in any order, and CRLs judged by
pyhanko-certvalidator at the moment the axis accepted the message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from gateway import edxml
from gateway.edxml.revocation import (
    RevocationPolicy,
    RevocationState,
    distribution_points,
    judge,
)
from gateway.errors import CertificateRevoked, RevocationUnknown, UntrustedCertificate
from gateway.pki import KeyPair, Revoked, create_ca, issue, make_crl
from tests.messages import PROVINCE, full_document

ROOT_CRL = "http://127.0.0.1:9/root.crl"
ISSUING_CRL = "http://127.0.0.1:9/intermediate.crl"


class Hierarchy:
    """A national root, the CA it certifies, and one agency under that CA."""

    def __init__(self) -> None:
        since = datetime.now(UTC) - timedelta(days=30)
        self.root = create_ca("Root CA", not_before=since)
        self.issuing = create_ca("Issuing CA", issuer=self.root, crl_url=ROOT_CRL, not_before=since)
        self.agency = issue(self.issuing, PROVINCE, "UBND tỉnh Tiền Giang", crl_url=ISSUING_CRL, not_before=since)

    def identity(self, *, with_intermediate: bool = True) -> edxml.SigningIdentity:
        chain = self.agency.cert_pem + (self.issuing.cert_pem if with_intermediate else b"")
        return edxml.SigningIdentity.from_pem(self.agency.key_pem, chain)

    def trust(self, *, intermediates: bytes | None = None) -> edxml.TrustStore:
        return edxml.TrustStore.from_pem(self.root.cert_pem, intermediates)

    def crls(self, revoked_agency_at: datetime | None = None, **kwargs) -> list[bytes]:
        listed = [Revoked(self.agency.certificate.serial_number, revoked_agency_at)] if revoked_agency_at else []
        return [make_crl(self.root, **kwargs), make_crl(self.issuing, listed, **kwargs)]


@pytest.fixture(scope="module")
def pki() -> Hierarchy:
    return Hierarchy()


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity())


def chain_of(data: bytes, trust: edxml.TrustStore) -> tuple[x509.Certificate, ...]:
    verdict = edxml.validate(data, trust=trust).signature
    assert verdict.valid
    return verdict.chain


def test_the_path_runs_from_the_signer_through_the_intermediate_in_key_info_to_the_root(pki, signed):
    chain = chain_of(signed, pki.trust())
    assert [c.subject for c in chain] == [
        pki.agency.certificate.subject,
        pki.issuing.certificate.subject,
        pki.root.certificate.subject,
    ]
    assert distribution_points(chain) == (ISSUING_CRL, ROOT_CRL)


def test_an_intermediate_missing_from_key_info_is_found_among_the_configured_ones(pki):
    bare = edxml.sign_message(full_document(), pki.identity(with_intermediate=False))
    with pytest.raises(UntrustedCertificate):
        edxml.validate(bare, trust=pki.trust())
    other = create_ca("Another issuing CA", issuer=create_ca("Another root"))
    # configured in any order, among CAs of no concern
    bundle = other.cert_pem + pki.issuing.cert_pem
    assert len(chain_of(bare, pki.trust(intermediates=bundle))) == 3


def test_a_configured_intermediate_is_no_trust_anchor(pki):
    """An intermediate configured to complete paths must not make a root nobody trusts count."""
    stranger_root = create_ca("Stranger root")
    stranger = create_ca("Stranger issuing CA", issuer=stranger_root)
    agency = issue(stranger, PROVINCE)
    data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(agency.key_pem, agency.cert_pem))
    with pytest.raises(UntrustedCertificate):
        edxml.validate(data, trust=pki.trust(intermediates=stranger.cert_pem))


def test_not_revoked_is_good(pki, signed):
    verdict = judge(chain_of(signed, pki.trust()), pki.crls(), at=datetime.now(UTC))
    assert verdict.state is RevocationState.GOOD
    assert verdict.error(RevocationPolicy.HARD) is None


def test_revoked_before_the_moment_is_revoked_and_refused_whatever_the_policy(pki, signed):
    now = datetime.now(UTC)
    verdict = judge(chain_of(signed, pki.trust()), pki.crls(now - timedelta(hours=1)), at=now)
    assert verdict.state is RevocationState.REVOKED
    assert verdict.revoked_at is not None and verdict.revoked_at <= now
    for policy in (RevocationPolicy.SOFT, RevocationPolicy.HARD):
        error = verdict.error(policy)
        assert isinstance(error, CertificateRevoked) and error.code == "SIG210"
        assert "revoked" in str(error) and PROVINCE in str(error)


def test_revoked_after_the_axis_accepted_the_message_still_counts(pki, signed):
    now = datetime.now(UTC)
    verdict = judge(chain_of(signed, pki.trust()), pki.crls(now - timedelta(hours=1)), at=now - timedelta(hours=2))
    assert verdict.state is RevocationState.GOOD


def test_a_revoked_intermediate_revokes_every_agency_under_it(pki, signed):
    now = datetime.now(UTC)
    crls = [
        make_crl(pki.root, [Revoked(pki.issuing.certificate.serial_number, now - timedelta(minutes=5))]),
        make_crl(pki.issuing),
    ]
    verdict = judge(chain_of(signed, pki.trust()), crls, at=now)
    assert verdict.state is RevocationState.REVOKED


@pytest.mark.parametrize(
    "case",
    ["no CRL at all", "the issuing CA's CRL missing", "an expired CRL", "a CRL signed by another CA"],
)
def test_without_a_usable_crl_the_status_is_unknown_refused_only_when_hard(pki, signed, case):
    now = datetime.now(UTC)
    crls = {
        "no CRL at all": [],
        "the issuing CA's CRL missing": pki.crls()[:1],
        "an expired CRL": pki.crls(this_update=now - timedelta(days=9), next_update=now - timedelta(days=2)),
        "a CRL signed by another CA": [make_crl(pki.root), make_crl(KeyPair(create_ca().key, pki.issuing.certificate))],
    }[case]
    verdict = judge(chain_of(signed, pki.trust()), crls, at=now)
    assert verdict.state is RevocationState.UNKNOWN, verdict
    assert verdict.error(RevocationPolicy.SOFT) is None
    error = verdict.error(RevocationPolicy.HARD)
    assert isinstance(error, RevocationUnknown) and error.code == "SIG211"


def test_certificates_that_name_no_crl_are_not_checked(pki):
    agency = issue(pki.issuing, PROVINCE)  # no distribution point
    root_only = edxml.sign_message(
        full_document(), edxml.SigningIdentity.from_pem(agency.key_pem, agency.cert_pem + pki.issuing.cert_pem)
    )
    chain = chain_of(root_only, pki.trust())
    assert distribution_points(chain) == (ROOT_CRL,)  # the issuing CA's own still counts
    assert judge(chain, pki.crls(), at=datetime.now(UTC)).state is RevocationState.GOOD
    plain_ca = create_ca()
    plain = issue(plain_ca, PROVINCE)
    data = edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(plain.key_pem, plain.cert_pem))
    verdict = judge(chain_of(data, edxml.TrustStore.from_pem(plain_ca.cert_pem)), [], at=datetime.now(UTC))
    assert verdict.state is RevocationState.NOT_CHECKED
    assert verdict.error(RevocationPolicy.HARD) is None


def test_garbage_crl_bytes_are_an_unknown_status_not_an_exception(pki, signed):
    verdict = judge(
        chain_of(signed, pki.trust()), [b"\x30\x82\xff\xff" + b"\x00" * 64, b"not a CRL"], at=datetime.now(UTC)
    )
    assert verdict.state is RevocationState.UNKNOWN


@pytest.mark.parametrize("url", ["ldap://ldap.ca.gov.vn/cn=CA?certificateRevocationList", "https://ca.gov.vn/ca.crl"])
def test_a_crl_we_cannot_fetch_makes_the_status_unknown_not_unchecked(pki, url):
    """Only a path naming no CRL at all is NOT_CHECKED; one naming it where we do not (or could
    not) fetch is UNKNOWN, which hard refuses (found in review: ldap and https were NOT_CHECKED)."""
    agency = issue(pki.issuing, PROVINCE, crl_url=url)
    data = edxml.sign_message(
        full_document(), edxml.SigningIdentity.from_pem(agency.key_pem, agency.cert_pem + pki.issuing.cert_pem)
    )
    chain = chain_of(data, pki.trust())
    assert (url in distribution_points(chain)) == url.startswith("https:")
    verdict = judge(chain, [make_crl(pki.root)], at=datetime.now(UTC))
    assert verdict.state is RevocationState.UNKNOWN
    assert isinstance(verdict.error(RevocationPolicy.HARD), RevocationUnknown)
