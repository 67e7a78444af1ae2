"""The load generator's ledger against what the province holds at the end: every planned
delivery in its recipient's inbox exactly once, and its 01 recorded by its sender."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from bench.replay.build import Folders
from bench.replay.shape import Shape
from bench.replay.traffic import Plan
from gateway.daemon.inbox import DOCUMENT_JSON, folder_name


@dataclass
class Verdict:
    planned: int = 0  # deliveries the plan made
    lost: int = 0  # planned, not in the recipient's inbox
    duplicated: int = 0  # in an inbox more than once (two folders, or two delivered rows)
    unexpected: int = 0  # in an inbox, not planned
    receipts_missing: int = 0  # delivered, but the sender holds no 01 from that recipient
    statuses_missing: int = 0  # an answer dropped (02, 03, 06, 15) its document's sender does not hold
    statuses_repeated: int = 0  # a status the sender holds more than once
    errors_logged: int = 0  # error lines in the processes' logs (footprint.errors_logged)
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.unexpected
            or self.receipts_missing
            or self.statuses_missing
            or self.statuses_repeated
            or self.errors_logged
        )

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)


def check(folders: Folders, shape: Shape, plan: Plan) -> Verdict:
    verdict = Verdict()
    expected: dict[str, set[str]] = {}  # recipient -> inbox folder names
    pairs: set[tuple[str, str, str]] = set()  # (sender, document_id, recipient)
    for document in plan.documents:
        name = folder_name(document.sender, document.document_id, "")
        for recipient in document.recipients:
            expected.setdefault(recipient, set()).add(name)
            pairs.add((document.sender, document.document_id, recipient))
            verdict.planned += 1
    for code in shape.agencies:
        inbox = folders.inbox(shape, code)
        present = set()
        if inbox.is_dir():
            present = {p.name for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")}
        wanted = expected.get(code, set())
        for name in sorted(wanted - present):
            verdict.lost += 1
            verdict.note(f"lost: {name} for {code}")
        for name in sorted(present - wanted):
            verdict.unexpected += 1
            verdict.note(f"unexpected: {name} in {inbox}")
        for name in wanted & present:
            if not (inbox / name / DOCUMENT_JSON).is_file():
                verdict.lost += 1
                verdict.note(f"no {DOCUMENT_JSON}: {inbox / name}")
    receipts: Counter[tuple[str, str, str, str]] = Counter()  # (sender, DocumentId, recipient, code)
    for installation in shape.installations.values():
        database = folders.installation(installation) / "var" / "gateway.sqlite3"
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            copies = Counter(
                db.execute(
                    "SELECT to_code, from_code, document_id FROM incoming"
                    " WHERE message_type = 'edoc' AND state = 'delivered'"
                ).fetchall()
            )
            for key, count in copies.items():
                if count > 1:
                    verdict.duplicated += count - 1
                    verdict.note(f"delivered {count} times: {key}")
            for sender, document_id, recipient, code in db.execute(
                "SELECT o.from_code, o.document_id, r.from_code, r.status_code FROM receipts r"
                " JOIN outgoing o ON o.id = r.outgoing_id WHERE o.kind = 'edoc'"
            ):
                receipts[(sender or installation.code, document_id, recipient, code)] += 1
        finally:
            db.close()
    arrived = {(sender, document_id, recipient) for sender, document_id, recipient, code in receipts if code == "01"}
    for missing in sorted(pairs - arrived)[:5]:
        verdict.note(f"no 01: {missing}")
    verdict.receipts_missing = len(pairs - arrived)
    answers = {
        (a.document.sender, a.document.document_id, a.recipient, a.code)
        for step in plan.steps
        for a in step.answers + step.carried
    }
    for missing in sorted(answers - set(receipts))[:5]:
        verdict.note(f"status not back: {missing}")
    verdict.statuses_missing = len(answers - set(receipts))
    verdict.statuses_repeated = sum(count - 1 for count in receipts.values() if count > 1)
    return verdict
