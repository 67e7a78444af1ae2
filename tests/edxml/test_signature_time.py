"""Times a signature is judged at, and the time a report counts a document at (issue 13, cases 6
and 7b): when the axis says it accepted the message counts; a time anyone on the way could
have written in the message never does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway import edxml
from gateway.daemon import compose
from gateway.daemon.examine import Receiver, examine
from gateway.edxml.build import serialize
from gateway.edxml.relay import append_trace_header
from gateway.edxml.xmlsafe import parse_xml
from gateway.errors import CertificateExpired
from gateway.pki import KeyPair, create_ca, issue
from gateway.vxp.protocol import VIETNAM
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status

AXIS = "000.00.00.A00"


@pytest.fixture(scope="module")
def ca() -> KeyPair:
    return create_ca("A CA of long standing", not_before=datetime.now(UTC) - timedelta(days=1000), days=3000)


@pytest.fixture(scope="module")
def expired_yesterday(ca) -> bytes:
    """A document signed while the certificate was valid; it expired yesterday, the message waited."""
    now = datetime.now(UTC)
    pair = issue(ca, PROVINCE, not_before=now - timedelta(days=10), not_after=now - timedelta(days=1))
    return edxml.sign_message(full_document(), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem))


def trusting(ca: KeyPair) -> edxml.TrustStore:
    return edxml.TrustStore.from_pem(ca.cert_pem)


def with_hops(data: bytes, *hops: tuple[str, datetime]) -> bytes:
    """Hops appended after the signature, exactly as a relay appends them."""
    root = parse_xml(data)
    for organ_id, moment in hops:
        append_trace_header(root, organ_id, moment.astimezone(VIETNAM).replace(tzinfo=None))
    return serialize(root)


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def test_a_certificate_that_expired_while_the_message_waited_at_the_axis_still_counts(expired_yesterday, ca):
    """The receiving gateway passes when its axis says it accepted the message (its list's created_time)."""
    accepted = ago(days=2)
    data = with_hops(expired_yesterday, (AXIS, accepted))
    verdict = edxml.validate(data, trust=trusting(ca), at=accepted).signature
    assert verdict.valid and verdict.relay_hops == 1 and verdict.checked_at == accepted
    receiver = Receiver(DEPARTMENT, trusting(ca))
    examined = examine(
        data, listed_from=PROVINCE, listed_as="edoc", receiver=receiver, accepted_at=accepted.timestamp()
    )
    assert examined.refusal is None and examined.signature.valid
    # an axis clock ahead of ours does not move the judgement past now
    later = examine(
        data, listed_from=PROVINCE, listed_as="edoc", receiver=receiver, accepted_at=ago(days=-3).timestamp()
    )
    assert later.refusal.startswith("SIG206")
    assert examine(data, listed_from=PROVINCE, listed_as="edoc", receiver=receiver).refusal.startswith("SIG206")


@pytest.mark.parametrize(
    "hops",
    [
        pytest.param((), id="no-hop"),
        pytest.param(((AXIS, ago(days=2)),), id="a-hop-naming-the-axis"),
        pytest.param(((PROVINCE, ago(days=2)),), id="a-hop-the-sender-wrote"),
        pytest.param(((MINISTRY, ago(days=1300)),), id="a-hop-naming-anyone-years-ago"),
        pytest.param(((AXIS, datetime.now(UTC) + timedelta(days=3)),), id="a-hop-in-the-future"),
    ],
)
def test_no_time_written_in_the_message_makes_an_expired_certificate_count(expired_yesterday, ca, hops):
    """Anyone on the way, the sender first, can append a hop with any time after the signature."""
    with pytest.raises(CertificateExpired, match="expired on"):
        edxml.validate(with_hops(expired_yesterday, *hops), trust=trusting(ca))


def test_a_status_with_a_forged_hop_is_judged_now(ca):
    """Found in review: a status carries no axis hop, so a sender-written one came last."""
    now = datetime.now(UTC)
    pair = issue(ca, DEPARTMENT, not_before=now - timedelta(days=2000), not_after=now - timedelta(days=1000))
    status = edxml.sign_message(
        full_status(sender=DEPARTMENT), edxml.SigningIdentity.from_pem(pair.key_pem, pair.cert_pem)
    )
    forged = with_hops(status, ("000.00.00.A00", ago(days=1300)))
    with pytest.raises(CertificateExpired):
        edxml.validate(forged, trust=trusting(ca))
    refused = examine(forged, listed_from=DEPARTMENT, listed_as="status", receiver=Receiver(PROVINCE, trusting(ca)))
    assert refused.refusal.startswith("SIG206")


def test_the_report_time_comes_only_from_a_signed_hop(pki):
    """Software that writes no sender hop: a hop appended later, naming the sender with a time
    inside another quarter, must not move the document into that quarter."""
    document = dataclasses.replace(
        full_document(),
        trace_headers=(),
        promulgation_info=dataclasses.replace(full_document().promulgation_info, promulgation_date=date(2023, 10, 5)),
    )
    signed = edxml.sign_message(document, pki.identity(PROVINCE))
    forged = with_hops(signed, (PROVINCE, datetime(2023, 9, 30, 1, 0, tzinfo=UTC)), (AXIS, ago(seconds=1)))
    checked = edxml.validate(forged, trust=pki.trust)
    assert (checked.signature.signed_hops, checked.signature.relay_hops) == (0, 2)
    default = datetime(2026, 1, 1)
    assert compose.document_time(checked.message, signed_hops=checked.signature.signed_hops, default=default) == (
        "2023-10-05T00:00:00"
    )
    # the sender's own hop, under its signature, is the document's time
    stamped = dataclasses.replace(
        document, trace_headers=(edxml.TraceHeader(edxml.AgencyCode(PROVINCE), datetime(2023, 9, 29, 8, 0)),)
    )
    checked = edxml.validate(
        with_hops(edxml.sign_message(stamped, pki.identity(PROVINCE)), (AXIS, ago(seconds=1))), trust=pki.trust
    )
    assert checked.signature.signed_hops == 1
    assert compose.document_time(checked.message, signed_hops=1, default=default) == "2023-09-29T08:00:00"
