"""Status messages we receive: receipts of our documents (01-06, 02, 15, 16) and recalls (13)."""

from __future__ import annotations

import time

from gateway import edxml
from gateway.daemon import inbox
from gateway.daemon.examine import Examined
from gateway.daemon.outgoing import Agency, Local
from gateway.store import Incoming, IncomingState, Receipt, Settled


def record_status(local: Local, agency: Agency, row: Incoming, examined: Examined) -> None:
    """Record a fetched status message for hosted ``agency``, and settle it: a receipt of one of
    its documents, a recall (13) of one it holds noted in its inbox folder, or refused with the reason."""
    status = examined.message
    assert isinstance(status, edxml.StatusMessage)
    answered = status.response_for.document_id or ""
    reason = examined.refusal
    outgoing = None
    if reason is None and status.status_code is edxml.StatusCode.RECALL_REQUESTED:
        original = local.store.incoming.delivered_copy(row.from_code, answered, agency.code)
        answering = status.response_for.organ_id
        if original is None or answering is None or answering.text != agency.code:
            reason = f"recall request for {answered!r}, which {row.from_code} never delivered to {agency.code}"
        else:
            inbox.add_event(
                agency.inbox,
                inbox.recorded_name(original.inbox_id, original.axis_doc_id),
                f"{inbox.axis_name(row.axis_doc_id)}-13",
                {
                    "status_code": "13",
                    "meaning": status.status_code.meaning,
                    "from": row.from_code,
                    "document_id": answered,
                    "description": status.description,
                    "timestamp": status.timestamp.isoformat() if status.timestamp else None,
                    "answer_with": "edxml-gateway respond --code 15 (agree) or --code 16 (refuse)",
                },
            )
    elif reason is None:
        outgoing = local.store.outgoing.sent_document(answered)
        if outgoing is None or row.from_code not in outgoing.to_codes or outgoing.from_code != agency.code:
            reason = (
                f"status {status.status_code.wire} from {row.from_code} about {answered!r},"
                f" not a document {agency.code} sent it"
            )
    receipt = None
    if outgoing is not None and reason is None:
        receipt = Receipt(
            outgoing_id=outgoing.id,
            from_code=row.from_code,
            status_code=status.status_code.wire,
            description=status.description,
            status_time=status.timestamp.isoformat() if status.timestamp else None,
            received_at=time.time(),
            axis_doc_id=row.axis_doc_id,
        )
    local.store.incoming.settle(
        row.axis_doc_id,
        Settled(
            IncomingState.REJECTED if reason else IncomingState.RECORDED,
            from_code=row.from_code,
            document_id=answered,
            status_code=status.status_code.wire,
            reason=reason,
        ),
        receipt=receipt,
    )
    log = agency.log.bind(
        document_id=answered, peer=row.from_code, axis_doc_id=row.axis_doc_id, status_code=status.status_code.wire
    )
    if reason:
        log.warning("status_rejected", reason=reason)
    else:
        log.info("status_received")
