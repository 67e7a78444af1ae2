"""The states a message goes through at a gateway, and every move allowed between them.

This table is the only place the moves are written. The store moves a row with
``UPDATE … WHERE state IN (allowed sources)`` and checks that one row moved, so a move the
table does not allow raises IllegalTransition instead of rewriting history.

Outgoing, documents and status messages we send::

    queued ──push: the axis accepted it──▶ sent
      │ ▲                                   ▲
      │ └──retry command (by hand)──┐       │ a send in flight when the deadline
      ▼                             │       │ passed was accepted after all
    failed ─────────────────────────┴───────┘
      │ (deadline passed, permanent refusal by the axis, signed file gone)
      └──abandon command (by hand, with who and why)──▶ abandoned

Incoming, what the axis lists for us (acknowledging it to the axis is a flag, not a state)::

    listed ──deliver──▶ delivered   a document in the inbox, with its 01 queued
           ──deliver──▶ duplicate   another axis copy of a document already delivered
           ──deliver──▶ rejected    kept in inbox/.rejected, with its 02 queued (or a status refused)
           ──deliver──▶ recorded    a status message, with its receipt
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from gateway.errors import IllegalTransition


class OutgoingState(enum.StrEnum):
    QUEUED = "queued"  # signed, written, waiting for the axis to accept it
    SENT = "sent"  # the axis accepted it and gave it a DocId
    FAILED = "failed"  # the gateway gave up: a person must look (retry, or abandon)
    ABANDONED = "abandoned"  # a person gave up on it (who, when, why recorded); kept, never sent


class IncomingState(enum.StrEnum):
    LISTED = "listed"  # the axis listed it for us; not fetched, or not settled yet
    DELIVERED = "delivered"  # "01 — đã đến": in the inbox
    DUPLICATE = "duplicate"  # the same (sender, DocumentId) under another axis DocId
    REJECTED = "rejected"  # "02 — từ chối": refused, kept, answered
    RECORDED = "recorded"  # a status message about one of ours, or a recall of one we hold


OUTGOING_MOVES: Mapping[OutgoingState, frozenset[OutgoingState]] = {
    OutgoingState.QUEUED: frozenset({OutgoingState.SENT, OutgoingState.FAILED}),
    OutgoingState.FAILED: frozenset({OutgoingState.QUEUED, OutgoingState.SENT, OutgoingState.ABANDONED}),
    OutgoingState.SENT: frozenset(),
    OutgoingState.ABANDONED: frozenset(),
}

INCOMING_MOVES: Mapping[IncomingState, frozenset[IncomingState]] = {
    IncomingState.LISTED: frozenset(
        {IncomingState.DELIVERED, IncomingState.DUPLICATE, IncomingState.REJECTED, IncomingState.RECORDED}
    ),
    IncomingState.DELIVERED: frozenset(),
    IncomingState.DUPLICATE: frozenset(),
    IncomingState.REJECTED: frozenset(),
    IncomingState.RECORDED: frozenset(),
}


State = TypeVar("State", OutgoingState, IncomingState)


def sources(moves: Mapping[State, frozenset[State]], target: State) -> tuple[State, ...]:
    """Every state a row may move to ``target`` from."""
    return tuple(state for state, targets in moves.items() if target in targets)


def refuse(kind: str, key: str, current: str | None, target: enum.StrEnum) -> IllegalTransition:
    """The error for a move the table does not allow (``current`` None: no such row)."""
    if current is None:
        return IllegalTransition(f"{kind} {key} does not exist; it cannot become {target}")
    return IllegalTransition(f"{kind} {key} is {current}; it cannot become {target}")
