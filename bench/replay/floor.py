"""The replay's floor: the format work its messages cannot do without, in one process, measured
after the run on the same machine (as bench/e2e.py measures its own).

Per delivery, what every exchange of the quarter's traffic must do at the least: its
document's building and signing (shared by the document's deliveries), the document's check
at its recipient, and each status (its 01, the answers, the recalls) signed once and checked
once. The axes' checks and every hop's I/O are left out, so the real cost can only be higher;
what the floor says is how far above it the exchange runs, and that no run can be faster than
it (the run's deliveries at scale 1 on two cores: ``floor_full_scale_seconds``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.replay import steps
from bench.replay.shape import Shape
from gateway import edxml
from gateway.daemon import compose

CORES = 2  # the development machine's, which the hour is asked of


@dataclass(frozen=True)
class Floor:
    """Milliseconds of one process's CPU for each kind of format work, hot (one after the other)."""

    document_signed: float  # composed from a job as the replay drops it, built, schema-checked, signed
    document_checked: float  # parse, schema, structure, signature
    status_signed: float
    status_checked: float

    def per_delivery(self, documents: int, deliveries: int, statuses: int) -> float:
        spent = (
            documents * self.document_signed
            + deliveries * self.document_checked
            + statuses * (self.status_signed + self.status_checked)
        )
        return spent / deliveries


def measure(pki: Path, the_shape: Shape, samples: int = 200) -> Floor:
    """Each kind of format work ``samples`` times, with the keys and certificates of the run."""
    sender, recipient = _two_installations(the_shape)
    names = {code: agency.name for code, agency in the_shape.agencies.items()}
    return measure_between(pki, sender, recipient, names, steps.ATTACHMENT, samples)


def measure_between(
    pki: Path, sender: str, recipient: str, names: dict[str, str], attachment: bytes, samples: int
) -> Floor:
    """Each kind of format work ``samples`` times: a document with ``attachment`` composed from
    a job, signed by ``sender`` and checked, its 01 signed by ``recipient`` and checked. The
    keys are ``pki``/CODE.key and .pem, trusted under ``pki``/ca.pem (bench/e2e.py's floor too)."""
    trust = edxml.TrustStore.from_pem((pki / "ca.pem").read_bytes())
    signer, answerer = (_identity(pki, code) for code in (sender, recipient))
    me, them = (edxml.Organization(edxml.AgencyCode.lenient(c), organ_name=names[c]) for c in (sender, recipient))
    spent = [0.0, 0.0, 0.0, 0.0]  # in Floor's order
    files = [compose.FileInput("van-ban.pdf", attachment)]
    for n in range(samples):
        job = {
            "to": [recipient],
            "subject": f"Văn bản số {n + 1} của {names[sender]}",
            "code_number": str(n + 1),
            "code_notation": "VT-RP",
            "paper": False,
        }
        marks = [time.process_time()]
        composed = compose.compose_document(job, files, sender=me, names=names, sequence=n + 1, where="floor")
        signed = edxml.sign_message(composed.document, signer, mode=edxml.SchemaMode.STRICT)
        marks.append(time.process_time())
        received = edxml.validate(signed, trust=trust).message
        marks.append(time.process_time())
        assert isinstance(received, edxml.Document)
        status = compose.status_for(compose.answered(received), sender=them, code=edxml.StatusCode.ARRIVED)
        answer = edxml.sign_message(status, answerer, mode=edxml.SchemaMode.LENIENT)
        marks.append(time.process_time())
        edxml.validate(answer, trust=trust)
        marks.append(time.process_time())
        for kind in range(4):
            spent[kind] += marks[kind + 1] - marks[kind]
    return Floor(*(1000 * seconds / samples for seconds in spent))


def _identity(pki: Path, code: str) -> edxml.SigningIdentity:
    return edxml.SigningIdentity.from_pem((pki / f"{code}.key").read_bytes(), (pki / f"{code}.pem").read_bytes())


def _two_installations(the_shape: Shape) -> tuple[str, str]:
    """Two of the province's installations (each has a key of its own, build.write_pki)."""
    ours = sorted(code for code, installation in the_shape.installations.items() if not installation.outside)
    return ours[0], ours[1]
