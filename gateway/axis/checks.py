"""What the axis checks of a message itself, with no database: the file, its type, its route.

Runs in place for a small message, in a worker thread for a large one (gateway/offload.py):
parse, schema, structure and (when the deployment asks) the signature; then the axis's own
trace header on a document, whose bytes are what recipients get.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway import edxml, logs
from gateway.axis.config import AxisConfig
from gateway.axis.wire import Checked, Refusal
from gateway.edxml import Limits, append_trace_header, parse_lifted, serialize
from gateway.edxml.revocation import RevocationPolicy, RevocationState
from gateway.errors import GatewayError, MalformedXML, SignatureError
from gateway.revocation import CrlCache, Revocation
from gateway.vxp.answers import AxisCode
from gateway.vxp.protocol import accepted_moment
from gateway.vxp.vocabulary import MessageType


class MessageCheck:
    def __init__(self, config: AxisConfig, trust: edxml.TrustStore | None) -> None:
        self.config = config
        self.trust = trust
        self.limits = Limits(max_bytes=config.max_body_bytes, max_attachment_bytes=config.max_body_bytes)
        policy = config.revocation if config.verify_signatures else RevocationPolicy.OFF
        cache = None if policy is RevocationPolicy.OFF else CrlCache(config.data_dir / "crls", log=logs.get("axis"))
        self.revocation = Revocation(policy, cache)

    async def judge_revocation(self, checked: Checked, accepted_at: float | None = None) -> None:
        """Refuse a message whose signer's certificate is revoked (or, under hard, whose status
        is unknown) at the moment that counts: now, when this axis accepts it from a sender;
        ``accepted_at`` when the upstream axis accepted what the bridge brings down."""
        verdict = await self.revocation.judge_signature(checked.signature, accepted_moment(accepted_at))
        error = verdict.error(self.revocation.policy)
        if error is not None and verdict.transient:  # the CA's server, for now: the sender retries
            raise Refusal(AxisCode.INTERNAL, f"{error}; try again later")
        if error is not None:
            raise Refusal(AxisCode.NOT_EDXML, str(error))
        if verdict.state is RevocationState.UNKNOWN:
            logs.get("axis").warning(
                "revocation_unknown", sender=checked.message.sender.organ_id.text, reason=verdict.detail
            )

    def __call__(self, source: Path | bytes, message_type: MessageType, submitted_sha256: str) -> Checked:
        data = source.read_bytes() if isinstance(source, Path) else source
        try:
            root, lifted = parse_lifted(data, self.limits)
            checked = edxml.validate_root(
                root,
                lifted=lifted,
                trust=self.trust,
                limits=self.limits,
                require_signature=self.config.verify_signatures,
                check_signature=self.config.verify_signatures,
                allow_sha1=self.config.allow_sha1,
            )
        except MalformedXML as exc:
            raise Refusal(AxisCode.INVALID_FILE, str(exc)) from None
        except (GatewayError, SignatureError) as exc:
            code = AxisCode.TOO_LARGE if exc.code == "EDX103" else AxisCode.NOT_EDXML
            raise Refusal(code, str(exc)) from None
        kind = MessageType.STATUS if isinstance(checked.message, edxml.StatusMessage) else MessageType.EDOC
        if kind != message_type:
            raise Refusal(AxisCode.BAD_REQUEST, f"messagetype says {message_type}, the file is a {kind}")
        if kind is MessageType.EDOC:
            # a routing loop: a hop of this axis already, after the sender's own (a provincial
            # axis's code may be its province's, which the sender's hop then carries too)
            if self.config.code in [hop.organ_id.text for hop in checked.message.trace_headers[1:]]:
                raise Refusal(
                    AxisCode.BAD_REQUEST, f"routing loop: the message already passed through {self.config.code}"
                )
            append_trace_header(root, self.config.code, edxml.now_vietnam())
            relayed = tuple(lifted.expand(serialize(root)))
        else:
            relayed = (data,)
        digest = hashlib.sha256()
        for piece in relayed:
            digest.update(piece)
        size = sum(len(piece) for piece in relayed)
        return Checked(checked.message, relayed, digest.hexdigest(), size, submitted_sha256, checked.signature)


def recipients(message: edxml.Message) -> tuple[str, ...]:
    """Where the axis delivers ``message`` (sorted: a resend is judged by the same set)."""
    routed = edxml.routed_to(message)
    if not routed:
        raise Refusal(AxisCode.NOT_EDXML, "the status message names no ResponseFor/OrganId")
    return tuple(sorted(routed))
