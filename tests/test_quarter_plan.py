"""The quarter replay's plan (bench/replay): the province's shape and traffic whose totals are
the published ones, exactly, at every scale and seed."""

from __future__ import annotations

from datetime import date

import pytest

from bench.replay import shape, traffic
from gateway.edxml import AgencyCode


def test_the_province_has_its_published_shape():
    province = shape.build()
    installations = [i for i in province.installations.values() if not i.outside]
    assert len(installations) == 45
    assert len(province.province) == 1174
    roles = [province.agencies[i.code].role for i in installations]
    assert roles.count(shape.Role.PROVINCE) == 1
    assert roles.count(shape.Role.DEPARTMENT) == 33
    assert roles.count(shape.Role.DISTRICT) == 11
    assert sum(a.role is shape.Role.COMMUNE for a in province.province) == 172
    for code in province.agencies:
        assert AgencyCode(code).is_qd20, code


@pytest.mark.parametrize(("scale", "seed"), [(0.001, 1), (0.01, 2023), (0.01, 7), (0.05, 3)])
def test_the_plan_gives_the_published_totals_scaled(scale, seed):
    province = shape.build()
    plan = traffic.plan(province, scale, seed, step="week")
    codes = {a.code for a in province.province}
    targets = traffic.Targets.at(scale)
    assert plan.totals(codes) == {
        "sent": targets.sent,
        "sent_with_paper": targets.sent_with_paper,
        "received": targets.received,
        "received_digitized": targets.received_digitized,
    }
    assert len({(d.sender, d.document_id) for d in plan.documents}) == len(plan.documents)
    for document in plan.documents:
        assert document.recipients and document.sender not in document.recipients
        assert len(set(document.recipients)) == len(document.recipients)
        assert set(document.recipients) <= set(province.agencies)
        assert document.day in plan.days
    assert any(d.sender not in codes for d in plan.documents), "nothing came from outside the province"


def test_published_totals_at_scale_one():
    assert traffic.Targets.at(1.0) == traffic.Targets(117_578, 3_984, 538_345, 9_160)


def test_the_calendar_is_the_quarters_working_days():
    days = traffic.working_days()
    assert len(days) == 63 and days[0] == date(2023, 7, 3) and days[-1] == date(2023, 9, 29)
    assert date(2023, 9, 1) not in days and date(2023, 9, 4) not in days
    weeks = traffic.calendar("week")
    assert len(weeks) == 13 and date(2023, 9, 5) in weeks  # 1-2 July is a weekend


def test_a_stretch_is_the_quarters_first_days_closed_by_what_they_owe():
    """--through: a stretch is the quarter's own plan up to a day (so a cut run of the whole
    quarter can be resumed as one), every answer and recall in it about its own documents."""
    province = shape.build()
    quarter = traffic.plan(province, 0.01, 2023, step="day")
    last = date(2023, 7, 14)  # the tenth working day
    stretch = quarter.through(last)
    assert stretch.days == quarter.days[:10]
    assert all(mine is theirs for mine, theirs in zip(stretch.steps[:10], quarter.steps[:10], strict=True))
    closing = stretch.steps[10]
    assert closing.day == last and not (closing.documents or closing.answers or closing.recalls)
    assert closing.carried == quarter.steps[10].carried and closing.carried  # the 06s and 15s owed
    assert stretch.documents == [d for d in quarter.documents if d.day <= last]
    assert stretch.deliveries == sum(len(d.recipients) for d in stretch.documents) < quarter.deliveries
    own = {id(d) for d in stretch.documents}
    for step in stretch.steps:
        assert all(id(a.document) in own for a in step.answers + step.carried)
        assert all(id(d) in own for d in step.recalls)
    codes = {a.code for a in province.province}
    assert quarter.through(quarter.days[-1]).totals(codes) == quarter.totals(codes)
    with pytest.raises(ValueError, match="not a day the calendar steps to"):
        quarter.through(date(2023, 7, 15))  # a Saturday


@pytest.mark.parametrize(
    ("step", "first"),
    [("day", date(2023, 7, 17)), ("day", date(2023, 9, 5)), ("week", date(2023, 9, 5)), ("week", date(2023, 7, 10))],
)
def test_the_rest_of_the_quarter_after_a_stretch_completes_it(step: str, first: date):
    """--from: the quarter from a day on, without the answers owed from the calendar's step
    before (after a weekend, after Quốc khánh; day or week steps). With the stretch --through
    that step it shares nothing, and the two are the whole plan."""
    province = shape.build()
    quarter = traffic.plan(province, 0.1, 2023, step=step)
    begun = quarter.days.index(first)
    rest, stretch = quarter.since(first), quarter.through(quarter.days[begun - 1])
    assert rest.days == quarter.days[begun:] and rest.steps[1:] == quarter.steps[begun + 1 :]
    opening = rest.steps[0]
    assert opening.day == first and opening.documents and quarter.steps[begun].carried and not opening.carried
    assert (opening.documents, opening.answers, opening.recalls) == (
        quarter.steps[begun].documents,
        quarter.steps[begun].answers,
        quarter.steps[begun].recalls,
    )
    own = {id(d) for d in rest.documents}
    assert rest.documents == [d for d in quarter.documents if d.day >= first]
    for step in rest.steps:
        assert all(id(a.document) in own for a in step.answers + step.carried)
        assert all(id(d) in own for d in step.recalls)

    def everything(plan: traffic.Plan) -> tuple[list[int], list[int], list[int]]:
        answers = [id(a) for step in plan.steps for a in step.answers + step.carried]
        recalls = [id(d) for step in plan.steps for d in step.recalls]
        return [id(d) for d in plan.documents], answers, recalls

    for mine, theirs, whole in zip(everything(stretch), everything(rest), everything(quarter), strict=True):
        assert sorted(mine + theirs) == sorted(whole) and not set(mine) & set(theirs)
    codes = {a.code for a in province.province}
    assert {k: stretch.totals(codes)[k] + rest.totals(codes)[k] for k in quarter.totals(codes)} == quarter.totals(codes)
    assert stretch.deliveries + rest.deliveries == quarter.deliveries
    assert quarter.since(quarter.days[0]).totals(codes) == quarter.totals(codes)
    assert quarter.since(first).through(quarter.days[-1]).days == quarter.days[begun:]
    with pytest.raises(ValueError, match="not a day the calendar steps to"):
        quarter.since(date(2023, 7, 15))  # a Saturday


def test_a_stretch_without_documents_is_refused():
    quarter = traffic.plan(shape.build(), 0.0001, 2023, step="day")
    empty = next(day for day in reversed(quarter.days) if not any(d.day >= day for d in quarter.documents))
    with pytest.raises(ValueError, match=f"the plan holds no document from {empty} on"):
        quarter.since(empty)
