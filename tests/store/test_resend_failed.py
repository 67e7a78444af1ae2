"""A document sent again after its first sending failed goes back to the queue with the message
signed now (found in review: the first bytes were put back and the new ones thrown away, so a
failure of the bytes themselves, a certificate since renewed or a signed file lost, came back
at every resend and only `abandon` then a resend got it out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store import GatewayStore, NewOutgoing, OutgoingState

DOCUMENT = NewOutgoing("edoc", "000.00.00.H58,2023/07/03,12/UBND", "Công văn", ("000.00.11.H58",), content_digest="c1")


@pytest.mark.parametrize("kept_in", ["database", "file"])
def test_a_failed_document_sent_again_is_queued_with_its_new_signature(tmp_path: Path, kept_in: str):
    store = GatewayStore(tmp_path)
    try:

        def queue(outgoing_id: str, signed: bytes):
            if kept_in == "database":
                return store.outgoing.queue(
                    outgoing_id, DOCUMENT, source_key=outgoing_id, deadline_seconds=60, body=signed
                )
            store.outgoing.path_for(outgoing_id).write_bytes(signed)
            return store.outgoing.queue(outgoing_id, DOCUMENT, source_key=outgoing_id, deadline_seconds=60)

        first = queue("first", b"<signed by the expired certificate/>")
        store.outgoing.fail(first.id, "ErrorCode 17: the certificate has expired")
        again = queue("again", b"<signed by the renewed certificate/>")
        assert again.id == "first" and again.state is OutgoingState.QUEUED
        assert store.outgoing.signed(again) == b"<signed by the renewed certificate/>"
        if kept_in == "file":
            assert again.file == store.outgoing.path_for("again").name
    finally:
        store.close()
