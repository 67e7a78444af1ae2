"""The circuit breaker in front of the axis: rests after a failure, then lets one probe through."""

from __future__ import annotations

import time

from gateway import logs
from gateway.daemon.breaker import AxisBreaker
from gateway.errors import AxisRefusesGateway, AxisUnavailable


def breaker(pause: float = 0.5) -> AxisBreaker:
    return AxisBreaker(delay=lambda failures: pause * (failures + 1), probe_seconds=0.3, log=logs.get("test"))


def test_closed_until_a_failure_then_resting_then_one_probe_at_a_time():
    axis = breaker()
    assert not axis.paused() and not axis.paused()  # healthy: everyone calls
    axis.down(AxisUnavailable("connection refused"))
    assert axis.paused()  # resting 0.5 s
    time.sleep(0.6)
    assert not axis.paused()  # the first caller after the rest probes…
    assert axis.paused()  # …and the others wait for its outcome
    axis.down(AxisUnavailable("still refused"))
    assert axis.failures == 2 and axis.paused()  # a longer rest: 1 s
    time.sleep(0.5)
    assert axis.paused()
    time.sleep(0.6)
    assert not axis.paused()
    axis.up()
    assert axis.failures == 0 and not axis.paused() and not axis.paused()


def test_a_probe_that_never_answers_lets_the_next_caller_try():
    axis = breaker(pause=0.0)
    axis.down(AxisUnavailable("timeout"))
    assert not axis.paused() and axis.paused()
    time.sleep(0.35)  # the probe's call has timed out by now
    assert not axis.paused()


def test_a_refusal_only_a_person_can_fix_is_counted_like_an_outage():
    axis = breaker()
    axis.down(AxisRefusesGateway("clock skew", axis_code="16"))
    assert axis.failures == 1 and axis.paused()


class Recorded:
    """Where the breaker's log lines go in this test: kept, to be counted."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append((event, fields))

    warning = error = info


def test_an_outage_is_said_when_it_starts_once_a_minute_and_when_it_ends():
    now = [1000.0]
    log = Recorded()
    axis = AxisBreaker(delay=lambda failures: 2.0, probe_seconds=0.3, log=log, clock=lambda: now[0])
    for _ in range(300):  # ten minutes of a failed call every two seconds
        axis.down(AxisUnavailable("connection refused"))
        now[0] += 2.0
    axis.up()
    events = [event for event, _ in log.lines]
    assert events[0] == "axis_unreachable" and events[-1] == "axis_reachable"
    assert events.count("axis_still_unreachable") == 9 and len(events) == 11
    assert log.lines[-1][1] == {"after_failures": 300, "down_seconds": 600}
    assert log.lines[1][1]["failures"] == 31 and log.lines[1][1]["down_seconds"] == 60


def test_a_call_answered_during_the_rest_began_before_the_failure_and_proves_nothing():
    """An axis shutting down answers some calls in flight and refuses others: the answers that
    come after the first refusal do not mean it is back (it flapped, logged thrice, before)."""
    axis = breaker()
    axis.down(AxisUnavailable("connection reset"))
    axis.up()  # a call begun before the failure, answered after it
    assert axis.failures == 1 and axis.paused()
    time.sleep(0.6)
    assert not axis.paused()  # the probe
    axis.up()
    assert axis.failures == 0 and not axis.paused()
