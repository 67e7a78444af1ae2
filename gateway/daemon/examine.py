"""What the deliver worker concludes about one fetched message: bytes in, verdict out, no I/O.

Safe parse, schema, structure and signature (gateway.edxml), then what only the receiver
can judge: the sender the axis named is the sender the file names, the file is the kind
the axis listed, a document is addressed to us, a status answers one of ours, and a
revoke, update or replace concerns a document of its own sender. The verdict carries
whatever could be read, so that a refusal can still answer the sender properly (02).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import edxml
from gateway.edxml.revocation import RevocationVerdict
from gateway.errors import GatewayError
from gateway.pdfsig.verdict import PdfReport
from gateway.vxp.protocol import accepted_moment
from gateway.vxp.vocabulary import MessageType


@dataclass(frozen=True)
class Receiver:
    """Who examines, and against what."""

    code: str  # the agency this gateway receives for
    trust: edxml.TrustStore
    limits: edxml.Limits = edxml.DEFAULT_LIMITS
    require_signatures: bool = True
    allow_sha1: bool = False


@dataclass(frozen=True)
class Examined:
    """The verdict on one fetched message: what it is, its signature, and why it is refused (if it is)."""

    data: bytes
    message: edxml.Message | None
    signature: edxml.SignatureVerdict | None
    refusal: str | None = None
    pdf: tuple[PdfReport | None, ...] = ()  # per attachment: its PDF signatures (None: not a PDF)
    revocation: RevocationVerdict | None = None  # its signer's certificate's, when judged


def examine(
    data: bytes, *, listed_from: str, listed_as: str, receiver: Receiver, accepted_at: float | None = None
) -> Examined:
    """Judge ``data``, listed by the axis as a ``listed_as`` from ``listed_from``.

    ``accepted_at``: when the axis says it accepted the message (its list's created_time, as
    trusted as the axis itself): the signer's certificate is judged then, so one that expired
    while the message waited for us still counts. Never later than now; without it, now.
    """
    at = accepted_moment(accepted_at)
    try:
        checked = edxml.validate(
            data,
            trust=receiver.trust,
            limits=receiver.limits,
            require_signature=receiver.require_signatures,
            allow_sha1=receiver.allow_sha1,
            at=at,
        )
    except GatewayError as exc:
        return Examined(data, _readable(data, receiver.limits), None, str(exc))
    message, signature = checked.message, checked.signature
    refusal = _refusal(message, listed_from=listed_from, listed_as=listed_as, code=receiver.code)
    return Examined(data, message, signature, refusal)


def _refusal(message: edxml.Message, *, listed_from: str, listed_as: str, code: str) -> str | None:
    sender = message.sender.organ_id.text
    if sender != listed_from:
        return f"From/OrganId {sender} differs from the axis's sender {listed_from}"
    kind = MessageType.EDOC if isinstance(message, edxml.Document) else MessageType.STATUS
    if kind != listed_as:
        return f"listed as {listed_as}, the file is a {kind}"
    routed_here = code in edxml.routed_to(message)
    if isinstance(message, edxml.Document):
        if not routed_here:
            return f"the document is not addressed to {code}"
        return edxml.foreign_reference(message)
    if not routed_here and message.status_code is not edxml.StatusCode.RECALL_REQUESTED:
        return f"the status does not answer a document of {code}"
    return None


def _readable(data: bytes, limits: edxml.Limits) -> edxml.Message | None:
    """What can be read of a refused message (without its signature), to answer its sender."""
    try:  # no schema check here: a message the schema refuses may still name whom to answer
        return edxml.read_unchecked(data, limits=limits)
    except GatewayError:
        return None
