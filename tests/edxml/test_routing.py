"""Where a message goes: the one rule the axis, the gateway's queue and its checks all use."""

from __future__ import annotations

import dataclasses

from gateway import edxml
from tests.messages import PROVINCE, full_document, full_status


def test_a_document_goes_to_each_to_in_its_order():
    document = full_document()
    assert edxml.routed_to(document) == tuple(t.organ_id.text for t in document.to)
    assert len(edxml.routed_to(document)) >= 2


def test_a_status_goes_to_the_agency_whose_document_it_answers_or_nowhere():
    status = full_status()
    assert edxml.routed_to(status) == (PROVINCE,)
    unanswered = dataclasses.replace(status, response_for=dataclasses.replace(status.response_for, organ_id=None))
    assert edxml.routed_to(unanswered) == ()
