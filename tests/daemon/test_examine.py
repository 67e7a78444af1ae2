"""The deliver worker's verdict on one fetched message (gateway/daemon/examine.py): bytes in,
verdict out, no I/O, so every refusal is checked here on real signed bytes."""

from __future__ import annotations

import dataclasses

import pytest

from gateway import edxml
from gateway.daemon.examine import Receiver, examine
from tests.messages import DEPARTMENT, MINISTRY, PROVINCE, full_document, full_status


@pytest.fixture(scope="module")
def department(pki) -> Receiver:
    return Receiver(DEPARTMENT, pki.trust)


@pytest.fixture(scope="module")
def document(pki) -> bytes:
    return edxml.sign_message(full_document(), pki.identity(PROVINCE))  # to 000.00.11.H58 and a unit under it


def test_a_signed_document_for_us_is_accepted(document, department):
    verdict = examine(document, listed_from=PROVINCE, listed_as="edoc", receiver=department)
    assert verdict.refusal is None and verdict.signature.valid
    assert verdict.message.subject == full_document().subject


@pytest.mark.parametrize(
    ("listed_from", "listed_as", "code", "reason"),
    [
        (MINISTRY, "edoc", DEPARTMENT, f"From/OrganId {PROVINCE} differs from the axis's sender {MINISTRY}"),
        (PROVINCE, "status", DEPARTMENT, "listed as status, the file is a edoc"),
        (PROVINCE, "edoc", "000.00.31.H58", "the document is not addressed to 000.00.31.H58"),
    ],
)
def test_what_only_the_receiver_can_judge(document, pki, listed_from, listed_as, code, reason):
    verdict = examine(document, listed_from=listed_from, listed_as=listed_as, receiver=Receiver(code, pki.trust))
    assert verdict.refusal == reason
    assert verdict.message is not None and verdict.signature.valid  # readable: the 02 can answer properly


def test_a_broken_signature_is_refused_but_what_can_be_read_is_kept(document, department):
    tampered = document.replace("Về việc triển khai".encode(), "Về việc hủy bỏ".encode())
    verdict = examine(tampered, listed_from=PROVINCE, listed_as="edoc", receiver=department)
    assert verdict.refusal.startswith("SIG202") and verdict.signature is None
    assert verdict.message.sender.organ_id.text == PROVINCE


def test_unreadable_bytes_are_refused_with_nothing_read(department):
    verdict = examine(b"<not edxml", listed_from=PROVINCE, listed_as="edoc", receiver=department)
    assert verdict.refusal.startswith("EDX101") and verdict.message is None


def test_a_status_must_answer_one_of_our_documents_unless_it_is_a_recall(pki):
    status = full_status(sender=DEPARTMENT)  # about a document of the province
    signed = edxml.sign_message(status, pki.identity(DEPARTMENT))
    to_province = examine(signed, listed_from=DEPARTMENT, listed_as="status", receiver=Receiver(PROVINCE, pki.trust))
    assert to_province.refusal is None
    elsewhere = examine(signed, listed_from=DEPARTMENT, listed_as="status", receiver=Receiver(MINISTRY, pki.trust))
    assert elsewhere.refusal == f"the status does not answer a document of {MINISTRY}"
    recall = dataclasses.replace(status, status_code=edxml.StatusCode.RECALL_REQUESTED)
    signed = edxml.sign_message(recall, pki.identity(DEPARTMENT))
    assert (
        examine(signed, listed_from=DEPARTMENT, listed_as="status", receiver=Receiver(MINISTRY, pki.trust)).refusal
        is None
    )


def test_a_revoke_of_another_agencys_document_is_refused(pki, department):
    revoke = dataclasses.replace(
        full_document(),
        business=edxml.Business(edxml.BusinessDocType.REVOKE, document_id=f"{MINISTRY},2026/11/20,1/VPCP"),
    )
    verdict = examine(
        edxml.sign_message(revoke, pki.identity(PROVINCE)), listed_from=PROVINCE, listed_as="edoc", receiver=department
    )
    assert "a document of 000.00.00.G22: only its sender may revoke, update or replace it" in verdict.refusal
