"""The quarter's traffic, planned before anything runs (no I/O): who sends what to whom on which
day, drawn from a seed so that the province's totals are exactly the published ones scaled.

Published for Tiền Giang, Q3 2023: 117,578 documents sent (3,984 with a paper copy) and
538,345 received (9,160 digitised from paper). At --scale S each of the four is
round(published × S); the electronic-only counts are the rest. "Sent" counts the documents
the province's agencies sent; "received" counts each delivery to one of its agencies (a
document to five of them is received five times), as the report counts them.

How a total comes out exact: the province's own documents are drawn first (sender by role,
then a pattern: up to its parent, across to peers, down to its units, out of the province,
or wide to every sở/huyện), which fixes how many deliveries stay inside the province; the
documents from outside (ministries, the Government Office, other provinces) then make up the
rest of "received", the last one taking what remains. Paper copies are a sample of the
province's documents; digitised ones are picked until their deliveries in the province are
exactly the target.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from bench.replay.shape import PROVINCE_CODE, Agency, Role, Shape

PUBLISHED = {"sent": 117_578, "sent_with_paper": 3_984, "received": 538_345, "received_digitized": 9_160}
QUARTER_FIRST, QUARTER_LAST = date(2023, 7, 1), date(2023, 9, 30)
# Quốc khánh 2023: Friday 1 and Monday 4 September were days off (with the weekend between).
HOLIDAYS = frozenset({date(2023, 9, 1), date(2023, 9, 4)})

SENDER_WEIGHT = {
    Role.PROVINCE: 400.0,
    Role.DEPARTMENT: 60.0,
    Role.DISTRICT: 60.0,
    Role.UNIT: 2.0,
    Role.OFFICE: 2.0,
    Role.COMMUNE: 3.0,
}
PATTERNS = (("up", 0.35), ("across", 0.25), ("down", 0.25), ("out", 0.10), ("wide", 0.05))
# What recipients answer (a share of deliveries), and how many documents their senders recall.
REFUSED, ACCEPTED, FINISHED_OF_ACCEPTED, RECALLED = 0.015, 0.70, 0.45, 0.003
REFUSALS = ("Gửi nhầm đơn vị nhận", "Thiếu phụ lục kèm theo", "Văn bản không thuộc thẩm quyền giải quyết")


@dataclass(frozen=True)
class Targets:
    sent: int
    sent_with_paper: int
    received: int
    received_digitized: int

    @classmethod
    def at(cls, scale: float) -> Targets:
        return cls(**{key: round(value * scale) for key, value in PUBLISHED.items()})


@dataclass(frozen=True)
class Planned:
    """One document: ``day`` is its promulgation date and the day its sender's gateway signs it."""

    number: int
    sender: str
    recipients: tuple[str, ...]
    day: date
    paper: bool
    digitized: bool

    @property
    def document_id(self) -> str:
        return f"{self.sender},{self.day:%Y/%m/%d},{self.number}/VT-RP"


@dataclass(frozen=True)
class Answer:
    """A status ``recipient`` sends about ``document``: 02 with its reason, 03 đã tiếp nhận,
    06 hoàn thành, or 15 (it gives the document back, answering a recall)."""

    document: Planned
    recipient: str
    code: str
    description: str | None = None


@dataclass
class Step:
    """One step of the calendar: first the documents and the answers owed from the step before
    (06 to yesterday's 03, 15 to yesterday's recalls); the day's own answers (02, 03), each as
    soon as the document it answers is delivered; once all are, the recalls (13, asked with
    `edxml-gateway recall`)."""

    day: date
    documents: list[Planned] = field(default_factory=list)
    carried: list[Answer] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    recalls: list[Planned] = field(default_factory=list)


@dataclass
class Plan:
    targets: Targets
    days: list[date]  # the days the calendar steps to, in order
    documents: list[Planned] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # len(days) + 1: the last carries the last answers

    @property
    def deliveries(self) -> int:
        return sum(len(d.recipients) for d in self.documents)

    def through(self, last: date) -> Plan:
        """The plan's days up to ``last`` (a day the calendar steps to), closed by an evening step
        with the answers owed from that day, as the quarter's last evening closes it: a stretch
        whose documents, answers and recalls all settle, checked as the quarter is (its report
        from its first day to ``last``). The days before are the whole plan's, drawn alike, so a
        replay cut anywhere before ``last`` and resumed as a stretch goes on with it."""
        kept = self._position(last) + 1
        closing = Step(last, carried=list(self.steps[kept].carried))  # owed from ``last`` only
        documents = [d for d in self.documents if d.day <= last]
        if not documents:
            raise ValueError(f"the plan holds no document from {self.days[0]} through {last}")
        return Plan(self.targets, self.days[:kept], documents, [*self.steps[:kept], closing])

    def since(self, first: date) -> Plan:
        """The plan's days from ``first`` on (a day the calendar steps to), without the answers
        owed from the day before: the rest of the quarter after a stretch ``through`` that day
        (which carries them), so the two share no document, delivery, answer or recall and
        together are the whole plan ("the day before" is the calendar's step before: the working
        day, or with week steps the week's first). Every answer and recall of a step is about the
        step's own documents or the day before's, so nothing in it is about a document it does not
        hold."""
        begun = self._position(first)
        day = self.steps[begun]
        opening = Step(first, documents=day.documents, answers=day.answers, recalls=day.recalls)  # none carried
        documents = [d for d in self.documents if d.day >= first]
        if not documents:
            raise ValueError(f"the plan holds no document from {first} on")
        return Plan(self.targets, self.days[begun:], documents, [opening, *self.steps[begun + 1 :]])

    def _position(self, day: date) -> int:
        if day not in self.days:
            raise ValueError(f"{day} is not a day the calendar steps to (a working day, or a week's first)")
        return self.days.index(day)

    def totals(self, province: set[str]) -> dict[str, int]:
        """The four figures the report must print, counted from the plan."""
        mine = [d for d in self.documents if d.sender in province]
        received = [(d, r) for d in self.documents for r in d.recipients if r in province]
        return {
            "sent": len(mine),
            "sent_with_paper": sum(d.paper for d in mine),
            "received": len(received),
            "received_digitized": sum(d.digitized for d, _ in received),
        }


def stretch_options(since: str | None, through: str | None) -> list[tuple[str, str]]:
    """The options that asked for a stretch, with their days (ISO): what messages and labels name."""
    return [(option, day) for option, day in (("--from", since), ("--through", through)) if day is not None]


def stretch_window(since: str | None, through: str | None) -> tuple[str, str]:
    """The first and last day (ISO) a stretch replays: the quarter's own where none was asked."""
    return since or QUARTER_FIRST.isoformat(), through or QUARTER_LAST.isoformat()


def working_days() -> list[date]:
    days, day = [], QUARTER_FIRST
    while day <= QUARTER_LAST:
        if day.weekday() < 5 and day not in HOLIDAYS:
            days.append(day)
        day += timedelta(days=1)
    return days


def calendar(step: str) -> list[date]:
    """The days the replay's clock steps to: every working day, or the first of each week."""
    days = working_days()
    if step == "day":
        return days
    firsts: dict[tuple[int, int], date] = {}
    for day in days:
        firsts.setdefault(tuple(day.isocalendar())[:2], day)
    return sorted(firsts.values())


class _Drawer:
    def __init__(self, shape: Shape, rng: random.Random) -> None:
        self.shape = shape
        self.rng = rng
        self.children = {code: [a.code for a in shape.children(code)] for code in shape.agencies}
        self.peers = {a.code: [c for c in self.children.get(a.parent or "", []) if c != a.code] for a in shape.province}
        top = self.children[PROVINCE_CODE]
        self.districts = [c for c in top if shape.agencies[c].role is Role.DISTRICT]
        self.top = top
        outside = shape.outside
        self.outside = [a.code for a in outside]
        self.outside_weights = [3.0 if a.code.endswith("G22") else 1.0 if ".G" in a.code else 0.5 for a in outside]

    def recipients(self, sender: Agency) -> list[str]:
        rng = self.rng
        pattern = rng.choices([p for p, _ in PATTERNS], [w for _, w in PATTERNS])[0]
        chosen = getattr(self, f"_{pattern}")(sender) or self._up(sender) or self._out(sender)
        return list(dict.fromkeys(code for code in chosen if code != sender.code))

    def _up(self, sender: Agency) -> list[str]:
        if sender.parent is None:
            return []
        chosen = [sender.parent]
        if sender.parent != PROVINCE_CODE and self.rng.random() < 0.3:
            chosen.append(PROVINCE_CODE)
        return chosen

    def _across(self, sender: Agency) -> list[str]:
        peers = self.peers.get(sender.code, [])
        if not peers:
            return []
        return self.rng.sample(peers, min(len(peers), self.rng.choice((1, 1, 1, 2, 2, 3, 4))))

    def _down(self, sender: Agency) -> list[str]:
        children = self.children.get(sender.code, [])
        if not children:
            return []
        if self.rng.random() < 0.4:
            return list(children)
        return self.rng.sample(children, min(len(children), self.rng.randint(1, 5)))

    def _out(self, sender: Agency) -> list[str]:
        chosen = [self.rng.choices(self.outside, self.outside_weights)[0]]
        if sender.parent is not None and self.rng.random() < 0.3:
            chosen.append(sender.parent)
        return chosen

    def _wide(self, sender: Agency) -> list[str]:
        if sender.role is Role.PROVINCE:
            return list(self.top)
        if sender.role is Role.DEPARTMENT:
            return [*self.districts, PROVINCE_CODE]
        return self._down(sender)

    def from_outside(self, fan_out: int) -> list[str]:
        """``fan_out`` province agencies a ministry or another province writes to: UBND tỉnh
        mostly first, then sở and huyện."""
        pool = [PROVINCE_CODE, *self.top]
        if fan_out > len(pool):
            pool += [a.code for a in self.shape.province if a.code not in pool]
        first = [PROVINCE_CODE] if self.rng.random() < 0.7 else []
        rest = [c for c in pool if c not in first]
        return first + self.rng.sample(rest, fan_out - len(first))


def plan(shape: Shape, scale: float, seed: int, *, step: str = "day") -> Plan:
    targets = Targets.at(scale)
    rng = random.Random(seed)
    drawer = _Drawer(shape, rng)
    days = calendar(step)
    result = Plan(targets, days)
    province = {a.code for a in shape.province}
    senders = shape.province
    weights = [SENDER_WEIGHT[a.role] for a in senders]
    numbers: Counter[str] = Counter()

    drafts: list[tuple[str, list[str]]] = []
    for _ in range(targets.sent):
        sender = rng.choices(senders, weights)[0]
        drafts.append((sender.code, drawer.recipients(sender)))
    inside = sum(1 for _, recipients in drafts for r in recipients if r in province)
    while inside > targets.received:  # a tiny scale drew too wide: narrow some documents
        index = rng.randrange(len(drafts))
        recipients = drafts[index][1]
        local = [r for r in recipients if r in province]
        if len(recipients) > 1 and local:
            recipients.remove(rng.choice(local))
            inside -= 1
    remaining = targets.received - inside
    while remaining > 0:
        fan_out = min(remaining, rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 8, 12)))
        sender = rng.choices(drawer.outside, drawer.outside_weights)[0]
        drafts.append((sender, drawer.from_outside(fan_out)))
        remaining -= fan_out

    paper = set(rng.sample(range(targets.sent), targets.sent_with_paper))  # the province's own: the first `sent`
    digitized: set[int] = set()
    left = targets.received_digitized
    for index in rng.sample(range(len(drafts)), len(drafts)):
        if left == 0:
            break
        count = sum(1 for r in drafts[index][1] if r in province)
        if 0 < count <= left:
            digitized.add(index)
            left -= count
    if left:
        raise ValueError(f"could not mark {targets.received_digitized} digitised deliveries exactly ({left} left)")

    dated = sorted((rng.choice(days), index) for index in range(len(drafts)))
    for day, index in dated:  # numbered in the order of their days, as a register is
        sender, recipients = drafts[index]
        numbers[sender] += 1
        result.documents.append(
            Planned(numbers[sender], sender, tuple(recipients), day, index in paper, index in digitized)
        )
    result.steps = _steps(result, rng, province)
    return result


def _steps(plan: Plan, rng: random.Random, province: set[str]) -> list[Step]:
    steps = [Step(day) for day in plan.days]
    steps.append(Step(plan.days[-1]))  # the evening of the last day: the answers still owed
    index = {day: i for i, day in enumerate(plan.days)}
    for document in plan.documents:
        step = steps[index[document.day]]
        step.documents.append(document)
        refused = False
        for recipient in document.recipients:
            draw = rng.random()
            if draw < REFUSED:
                step.answers.append(Answer(document, recipient, "02", rng.choice(REFUSALS)))
                refused = True
            elif draw < REFUSED + ACCEPTED:
                step.answers.append(Answer(document, recipient, "03"))
                if rng.random() < FINISHED_OF_ACCEPTED:
                    steps[index[document.day] + 1].carried.append(Answer(document, recipient, "06", "Đã xử lý xong"))
        if document.sender in province and not refused and rng.random() < RECALLED:
            step.recalls.append(document)
            steps[index[document.day] + 1].carried.extend(
                Answer(document, recipient, "15", "Đồng ý thu hồi") for recipient in document.recipients
            )
    return steps
