"""The axis as every worker meets it: the client, the circuit breaker in front of it, and
how long to wait after a failure (exponential backoff with jitter, [retry])."""

from __future__ import annotations

from typing import Any

from gateway.axis_client import AxisClient
from gateway.config import RetrySection
from gateway.daemon import backoff
from gateway.daemon.breaker import AxisBreaker


class AxisLink:
    def __init__(self, client: AxisClient, retry: RetrySection, *, probe_seconds: float, log: Any) -> None:
        self.client = client
        self.retry = retry
        self.breaker = AxisBreaker(delay=self.delay, probe_seconds=probe_seconds, log=log)

    def delay(self, attempts: int) -> float:
        """The wait after ``attempts`` earlier failures."""
        return backoff.delay(attempts, initial=self.retry.initial_seconds, maximum=self.retry.max_seconds)

    @property
    def longest_wait(self) -> float:
        """Longer than any wait ever given: a row due later than this was scheduled by a clock set back since."""
        return max(self.retry.max_seconds, self.retry.initial_seconds) + 60
