"""A dead axis gets a bounded request rate: the gateway's circuit breaker in front of the axis.

After a failure every worker rests for a backoff that grows with each further failure;
when it is over, one caller at a time probes the axis, and that call's outcome closes the
breaker (up) or opens it again (down). Refusals that only a person can fix (a wrong
secret, a clock off by hours) are logged with what to do.

The log says when the axis goes away and when it comes back, and in between at most one
line a SUMMARY_SECONDS with how many calls failed: a ten-minute outage is a dozen lines,
not a thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.errors import AxisRefusesGateway

REFUSAL_HINTS = {
    "15": "check [axis] system_id and secret_file against what the axis operator registered",
    "16": "this host's clock is too far from the axis's: check time synchronisation (NTP, timedatectl)",
}


SUMMARY_SECONDS = 60.0


class AxisBreaker:
    def __init__(
        self,
        *,
        delay: Callable[[int], float],
        probe_seconds: float,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
        name: str = "axis",
    ) -> None:
        self._name = name  # what the log lines call the far side: the axis, or a bridge's upstream
        self._delay = delay  # the backoff after n earlier failures
        self._probe_seconds = probe_seconds  # a probe's call times out within this
        self._log = log
        self._clock = clock
        self.failures = 0
        self._paused_until = 0.0
        self._probe_until = 0.0
        self._down_since = 0.0
        self._said_at = 0.0  # when the outage was last logged

    def paused(self) -> bool:
        """True while the axis is resting; after a failure, only one caller at a time probes it.

        Every worker asks this right before a call to the axis, so a False answer is always
        followed by a call, whose outcome ends the probe (or it times out).
        """
        now = self._clock()
        if now < self._paused_until:
            return True
        if self.failures:
            if now < self._probe_until:
                return True
            self._probe_until = now + self._probe_seconds
        return False

    def down(self, error: Exception) -> None:
        now = self._clock()
        self._probe_until = 0.0
        self.failures += 1
        pause = self._delay(self.failures - 1)
        self._paused_until = now + pause
        if self.failures == 1:
            self._down_since = now
        elif now - self._said_at < SUMMARY_SECONDS:
            return  # said already: the next summary says how many more calls failed
        self._said_at = now
        facts = {
            "failures": self.failures,
            "down_seconds": round(now - self._down_since),
            "pause_seconds": round(pause, 1),
        }
        if isinstance(error, AxisRefusesGateway):
            hint = REFUSAL_HINTS.get(error.axis_code, "")
            self._log.error(
                "axis_refuses_gateway" if self._name == "axis" else f"{self._name}_refuses_us",
                code=error.code,
                axis_code=error.axis_code,
                reason=str(error),
                hint=hint.replace("[axis]", f"[{self._name}]").replace("axis operator", f"{self._name} operator"),
                **facts,
            )
        elif self.failures == 1:
            self._log.warning(f"{self._name}_unreachable", error=str(error), **facts)
        else:
            self._log.warning(f"{self._name}_still_unreachable", error=str(error), **facts)

    def up(self) -> None:
        if self.failures and self._clock() < self._paused_until:
            # Nobody calls while the axis rests: this call began before the failure and was
            # answered since (an axis shutting down answers some, refuses others); the probe
            # after the rest says whether it is back.
            return
        self._probe_until = 0.0
        if self.failures:
            down = round(self._clock() - self._down_since)
            self._log.info(f"{self._name}_reachable", after_failures=self.failures, down_seconds=down)
        self.failures = 0
        self._paused_until = 0.0
