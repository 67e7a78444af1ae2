"""Our axis's batching extensions of two VXP calls, for gateways that ask for them.

Each delivery used to cost its recipient four calls: listed, fetched (getEdoc), and, once
settled, acknowledged (updateStatus), the list shared with others. Between our gateway and
our axis the list carries small messages itself and one updateStatus settles a round:

- getReceivedEdocList with a signed ``inline`` parameter (bytes): each listed message whose
  stored copy is at most that large (and at most INLINE_MAX_BYTES) comes in its item's
  "data", base64 as getEdoc answers it, and counts as fetched; INLINE_BUDGET_BYTES bounds the
  answer, what does not fit is listed as before and fetched with getEdoc.
- updateStatus with a signed ``docIds`` (a JSON array of up to STATUS_BATCH_MAX) instead of
  ``docId``: each named delivery of the caller's agencies gets the state; those that are not
  (unknown, or another system's: they look the same) come back in "failed".

Both are announced in every answer (gateway/vxp/extensions.py), as long-poll is: a
gateway uses them only with an axis that said so, and the national axis is called as the
SDK calls it. ``[server] batching = false`` turns both off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gateway.axis.records import Delivery
from gateway.axis.wire import Refusal
from gateway.vxp.answers import AxisCode
from gateway.vxp.extensions import MOST_DOC_IDS
from gateway.vxp.protocol import parse_json

INLINE_MAX_BYTES = 64 * 1024  # a message this large or smaller may travel in a list
INLINE_BUDGET_BYTES = 1024 * 1024  # the messages one list answer carries, at most (see gateway/vxp/extensions.py)
STATUS_BATCH_MAX = MOST_DOC_IDS  # docIds one updateStatus may name


def inline_limit(text: str | None, *, enabled: bool) -> int:
    """The ``inline`` parameter as bytes, capped at INLINE_MAX_BYTES: 0 when absent."""
    if text is None:
        return 0
    if not enabled:
        raise Refusal(AxisCode.BAD_REQUEST, "inline: this axis does not carry messages in lists")
    try:
        wanted = int(text.strip())
    except ValueError:
        raise Refusal(AxisCode.BAD_REQUEST, f"inline must be a number of bytes, not {text[:40]!r}") from None
    if wanted < 0:
        raise Refusal(AxisCode.BAD_REQUEST, f"inline must not be negative, not {wanted}")
    return min(wanted, INLINE_MAX_BYTES)


def may_carry(delivery: Delivery, limit: int) -> bool:
    """Whether a list may carry this delivery's message: never fetched, and small enough."""
    return delivery.fetched_at is None and delivery.size <= limit


def inline_bytes(deliveries: Sequence[Delivery], limit: int) -> int:
    """What :func:`read_inline` would read, at most."""
    return sum(delivery.size for delivery in deliveries if may_carry(delivery, limit))


def read_inline(deliveries: Sequence[Delivery], docs_dir: Path, limit: int) -> dict[str, bytes]:
    """The stored copies of the deliveries that fit, by docId, within the budget (read in
    place when they are few, gateway/offload.py).

    Only what was never fetched: a message fetched and not yet acknowledged is in the caller's
    hands (or was lost with it, and getEdoc answers). A file that is gone or larger than its
    row says is left out too.
    """
    chosen: dict[str, bytes] = {}
    budget = INLINE_BUDGET_BYTES
    for delivery in deliveries:
        if not may_carry(delivery, limit) or delivery.size > budget:
            continue
        try:
            with (docs_dir / delivery.file).open("rb") as handle:
                data = handle.read(limit + 1)
        except OSError:
            continue
        if len(data) > limit or len(data) > budget:
            continue
        chosen[delivery.doc_id] = data
        budget -= len(data)
    return chosen


def parse_doc_ids(text: str, *, enabled: bool) -> list[str]:
    """The ``docIds`` parameter: a JSON array of 1 to STATUS_BATCH_MAX docIds, without repeats."""
    if not enabled:
        raise Refusal(AxisCode.BAD_REQUEST, "docIds: this axis takes one docId per updateStatus")
    try:
        ids = parse_json(text)
    except ValueError:
        raise Refusal(AxisCode.BAD_REQUEST, f"docIds is not a JSON array: {text[:80]!r}") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
        raise Refusal(AxisCode.BAD_REQUEST, "docIds must be a JSON array of docIds")
    if not 1 <= len(ids) <= STATUS_BATCH_MAX:
        raise Refusal(AxisCode.BAD_REQUEST, f"docIds names {len(ids)} docIds; 1 to {STATUS_BATCH_MAX} are taken")
    return list(dict.fromkeys(i.strip() for i in ids))
