"""A revoke, update or replace may only concern a document of its own sender (issue 13, case 4).

Built as another agency's software would send them: signed with that agency's real key and
put on the axis directly, not through our intake.
"""

from __future__ import annotations

import dataclasses

from gateway import edxml
from gateway.store import OutgoingState
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import send_directly, signed_by, to, wait_until
from tests.messages import full_document

MINISTRY, PROVINCE, DEPARTMENT = "000.00.00.G22", "000.00.00.H58", "000.00.11.H58"


def from_ministry(number: int, kind: edxml.BusinessDocType, concerns: str) -> edxml.Document:
    """The ministry's document ``number`` to the department, revoking, updating or replacing ``concerns``."""
    document = to(full_document(sender=MINISTRY), DEPARTMENT, document_id=f"{MINISTRY},2026/12/01,{number}/VPCP")
    business = edxml.Business(business_doc_type=kind, document_id=concerns, business_doc_reason=kind.meaning)
    return dataclasses.replace(document, business=business)


def rejected_reasons(province, code: str) -> list[str]:
    folder = province.agencies[code].inbox / ".rejected"
    if not folder.is_dir():
        return []
    return [(p / "reason.txt").read_text() for p in folder.iterdir() if (p / "reason.txt").is_file()]


def test_a_revoke_of_another_agencys_document_is_refused_with_02(province):
    """Agency C sends a "Thu hồi" naming agency A's document (VPCP-form DocumentId) to a third agency."""
    province.start(DEPARTMENT)
    theirs = f"{PROVINCE},2026/11/20,12/UBND-VP"
    forged = from_ministry(3, edxml.BusinessDocType.REVOKE, theirs)
    send_directly(province, MINISTRY, signed_by(province, MINISTRY, forged))
    (reason,) = wait_until(lambda: rejected_reasons(province, DEPARTMENT), "the revoke refused")
    assert theirs in reason and f"a document of {PROVINCE}" in reason and "BussinessDocType 1" in reason
    assert province.agencies[DEPARTMENT].delivered() == []

    def refusals_sent() -> int:
        with province.agencies[DEPARTMENT].store() as store:
            statuses = store.reports.outgoing_for_kind(MessageType.STATUS)
        return sum(1 for s in statuses if s.status_code == "02" and s.state is OutgoingState.SENT)

    wait_until(refusals_sent, "the 02 sent to the ministry")
    # the sender's own revoke of its own document is delivered as before
    own = from_ministry(4, edxml.BusinessDocType.REVOKE, f"{MINISTRY},2026/11/20,1/VPCP")
    send_directly(province, MINISTRY, signed_by(province, MINISTRY, own))
    (delivered,) = wait_until(lambda: province.agencies[DEPARTMENT].delivered(), "the ministry's own revoke")
    assert delivered["business"]["type"] == 1


def test_an_update_of_a_document_known_only_by_an_opaque_id_is_judged_by_who_delivered_it(province):
    """The DocumentId is a UUID, which names nobody: our records say the province sent it."""
    province.start(DEPARTMENT)
    opaque = "9fbfbad2-5c3a-4d0e-9d52-1f7f2b9c0a11"
    original = to(full_document(sender=PROVINCE), DEPARTMENT, document_id=opaque)
    send_directly(province, PROVINCE, signed_by(province, PROVINCE, original))
    wait_until(lambda: province.agencies[DEPARTMENT].delivered(), "the province's document")
    respelled = "{" + opaque.upper() + "}"  # the same UUID to the systems that compare them (found in review)
    forged = from_ministry(5, edxml.BusinessDocType.UPDATE, respelled)
    send_directly(province, MINISTRY, signed_by(province, MINISTRY, forged))
    (reason,) = wait_until(lambda: rejected_reasons(province, DEPARTMENT), "the update refused")
    assert respelled in reason and f"a document of {PROVINCE}" in reason
    assert len(province.agencies[DEPARTMENT].delivered()) == 1
