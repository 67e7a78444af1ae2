"""The revocation verdict on a received message's signature, and what it costs the message
(issue 19): revoked before the axis accepted it → refused (02); unknown → delivered and said
under "soft", refused under "hard", except while the unknown is the CRL server's passing
outage: then the message waits (postponed, retried with backoff) until the retry deadline
([retry] deadline_hours after the axis accepted it), and only then is refused. A CA's server
down for an hour must not cost its signers' documents for good."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gateway.daemon.examine import Examined
from gateway.edxml.revocation import RevocationPolicy, RevocationState
from gateway.revocation import Revocation
from gateway.store import Incoming
from gateway.vxp.protocol import accepted_moment


@dataclass(frozen=True)
class Wait:
    """Not judged yet: postpone the message with this reason."""

    reason: str


async def judge(
    revocation: Revocation, row: Incoming, examined: Examined, *, deadline_passed: bool, log: Any
) -> Examined | Wait:
    if examined.refusal is not None or examined.signature is None or not examined.signature.valid:
        return examined
    verdict = await revocation.judge_signature(examined.signature, accepted_moment(row.accepted_at))
    error = verdict.error(revocation.policy)
    facts = {"axis_doc_id": row.axis_doc_id, "peer": row.from_code, "reason": verdict.detail}
    if error is not None:
        if verdict.transient and revocation.policy is RevocationPolicy.HARD and not deadline_passed:
            log.warning("revocation_pending", **facts)
            return Wait(str(error))
        return replace(examined, refusal=str(error), revocation=verdict)
    if verdict.state is RevocationState.UNKNOWN:  # soft: accepted, and said (here and in the inbox)
        log.warning("revocation_unknown", **facts)
    return replace(examined, revocation=verdict)
