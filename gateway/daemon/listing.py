"""What the record says, for a person: one document's story (`track`), or many in a list
(`list`). Times are Vietnam time with their offset, whatever wrote them."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from gateway import edxml
from gateway.config import Config
from gateway.daemon.outgoing import Local
from gateway.errors import UsageError
from gateway.store import GatewayStore, Incoming, Outgoing, OutgoingState
from gateway.vxp.vocabulary import MessageType


def track(config: Config, reference: str) -> dict[str, Any]:
    """A document by its DocumentId, our local id, its inbox folder (a path to it too) or an axis DocId."""
    local = Local.open(config, looking=True)
    try:
        store = local.store
        candidates = [reference]
        if reference.rstrip("/") != reference or reference.startswith(("/", "./")):
            candidates.append(PurePath(reference.rstrip("/")).name)  # a path to an inbox folder, completed by a shell
        found = next(filter(None, (_find(store, candidate) for candidate in candidates)), None)
        if found is None:
            raise UsageError(f"nothing is known about {reference!r}")
        document_id, received, items = found
        timeline: dict[str, Any] = {"document_id": document_id, "sent": [], "received": None, "statuses_sent": []}
        for item in items:
            entry = _outgoing(item)
            if item.kind is MessageType.EDOC:
                entry["recipients"] = _receipts(store, item)
                timeline["sent"].append(entry)
            else:
                timeline["statuses_sent"].append(entry)
        if received is not None:
            timeline["received"] = _incoming(received)
            # a document to several hosted agencies: one delivered copy each
            copies = store.incoming.delivered_to(document_id)
            others = [row for row in copies if row.axis_doc_id != received.axis_doc_id]
            if others:
                timeline["also_received"] = [_incoming(row) for row in others]
        return timeline
    finally:
        local.store.close()


def _find(store: GatewayStore, reference: str) -> tuple[str, Incoming | None, list[Outgoing]] | None:
    """(DocumentId, the document received, what we sent about it) for one reference, or None."""
    received = store.incoming.received(reference)
    if received is not None and received.document_id:
        document_id = received.document_id
    else:
        sent = store.outgoing.by_axis_doc_id(reference)
        document_id = sent.document_id if sent is not None else reference
    items = store.outgoing.for_document(document_id)
    return (document_id, received, items) if items or received is not None else None


def list_documents(
    config: Config,
    *,
    received: bool,
    state: str | None,
    peer: str | None,
    since: str | None,
    limit: int,
    agency: str | None = None,
) -> list[dict[str, Any]]:
    """Documents sent (or received), newest first; ``since`` a date (yyyy-mm-dd, Vietnam time)."""
    allowed = {"delivered", "duplicate", "rejected", "listed"} if received else {s.value for s in OutgoingState}
    if state is not None and state not in allowed:
        raise UsageError(f"--state must be one of {', '.join(sorted(allowed))}, not {state!r}")
    start = None
    if since:
        try:
            start = datetime.combine(date.fromisoformat(since), datetime.min.time(), edxml.VIETNAM).timestamp()
        except ValueError:
            raise UsageError(f"--since is a date (yyyy-mm-dd), not {since!r}") from None
    local = Local.open(config, looking=True)
    try:
        code = None if agency is None else local.agency(agency, option="--agency").code
        rows = local.store.reports.listing(
            sent=not received, state=state, peer=peer, since=start, limit=limit, agency=code
        )
        return [_incoming(row) if isinstance(row, Incoming) else _outgoing(row) for row in rows]
    finally:
        local.store.close()


def render_track(timeline: dict[str, Any]) -> str:
    lines = [f"document {timeline['document_id']}"]
    received = timeline["received"]
    if received:
        lines.append(
            f"  received by {received['to']} from {received['from']} at {received['received_at']}: {received['state']}"
            f" (inbox {received['inbox_id'] or '-'})"
        )
        if received["reason"] and received["state"] != "delivered":
            lines.append(f"    reason: {received['reason']}")
    for copy in timeline.get("also_received", []):
        lines.append(f"  received by {copy['to']} too at {copy['received_at']} (inbox {copy['inbox_id'] or '-'})")
    for item in timeline["statuses_sent"]:
        to = ", ".join(item["to"])
        lines.append(
            f"  status {item['status_code']} from {item['from']} to {to}: {item['state']} {item['sent_at'] or ''}"
        )
    for item in timeline["sent"]:
        when = f"sent at {item['sent_at']}" if item["sent_at"] else f"queued at {item['queued_at']}"
        lines.append(f"  sent by {item['from']}: {item['state']}, {when} (axis DocId {item['axis_doc_id'] or '-'})")
        if item["last_error"]:
            lines.append(f"    last error: {item['last_error']}")
        if "abandoned" in item:
            gave_up = item["abandoned"]
            lines.append(f"    abandoned by {gave_up['by']} at {gave_up['at']}: {gave_up['reason']}")
        for code, receipts in item["recipients"].items():
            if not receipts:
                lines.append(f"    {code}: no status yet")
            for r in receipts:
                said = f" — {r['description']}" if r["description"] else ""
                lines.append(f"    {code}: {r['status_code']} {r['status_time'] or r['received_at']}{said}")
    return "\n".join(lines)


def render_list(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        when = row.get("queued_at") or row.get("received_at") or row.get("listed_at") or "-"
        peers = ", ".join(row["to"]) if "kind" in row else row["from"]
        why = row.get("last_error") or row.get("reason") or ""
        lines.append(f"{when}  {row['state']:<9}  {row['document_id'] or '-'}  {peers}  {row['subject'] or ''}")
        if why:
            lines.append(f"    {why}")
    return "\n".join(lines) if lines else "nothing matches"


def _outgoing(item: Outgoing) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "document_id": item.document_id,
        "from": item.from_code,
        "id": item.id,
        "kind": item.kind,
        "state": item.state,
        "subject": item.subject,
        "axis_doc_id": item.axis_doc_id,
        "queued_at": edxml.vietnam_iso(item.created_at),
        "sent_at": edxml.vietnam_iso(item.sent_at),
        "last_error": item.last_error,
        "to": list(item.to_codes),
        "status_code": item.status_code,
    }
    if item.state is OutgoingState.ABANDONED:
        entry["abandoned"] = {
            "by": item.abandoned_by,
            "at": edxml.vietnam_iso(item.abandoned_at),
            "reason": item.abandon_reason,
        }
    return entry


def _incoming(row: Incoming) -> dict[str, Any]:
    return {
        "document_id": row.document_id,
        "from": row.from_code,
        "to": row.to_code,
        "state": row.state,
        "subject": row.subject,
        "axis_doc_id": row.axis_doc_id,
        "inbox_id": row.inbox_id,
        "listed_at": edxml.vietnam_iso(row.listed_at),
        "received_at": edxml.vietnam_iso(row.finished_at),
        "reason": row.reason,
        "acknowledged": bool(row.acked),
    }


def _receipts(store: GatewayStore, item: Outgoing) -> dict[str, list[dict[str, Any]]]:
    receipts = store.outgoing.receipts_for(item.id)
    return {
        code: [
            {
                "status_code": r.status_code,
                "meaning": edxml.StatusCode.from_wire(r.status_code).meaning,
                "description": r.description,
                "status_time": _status_time(r.status_time),
                "received_at": edxml.vietnam_iso(r.received_at),
            }
            for r in receipts
            if r.from_code == code
        ]
        for code in item.to_codes
    }


def _status_time(text: str | None) -> str | None:
    """A status's own time is Vietnam wall-clock time written without a zone: say which."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (moment if moment.tzinfo else moment.replace(tzinfo=edxml.VIETNAM)).isoformat(timespec="seconds")
