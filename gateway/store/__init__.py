"""The gateway's durable record (SQLite): the queue, the states, the report queries."""

from gateway.store.database import GatewayStore
from gateway.store.records import Incoming, NewOutgoing, Outgoing, Receipt, Settled
from gateway.store.schema import DOCUMENTS_QUEUED, SCHEMA_VERSION
from gateway.store.states import INCOMING_MOVES, OUTGOING_MOVES, IncomingState, OutgoingState

__all__ = [
    "DOCUMENTS_QUEUED",
    "INCOMING_MOVES",
    "OUTGOING_MOVES",
    "SCHEMA_VERSION",
    "GatewayStore",
    "Incoming",
    "IncomingState",
    "NewOutgoing",
    "Outgoing",
    "OutgoingState",
    "Receipt",
    "Settled",
]
