"""The workers' ticks when the wall clock steps.

apscheduler 3 schedules on the wall clock. A step of it (a virtual machine resumed after
days, NTP correcting a clock that booted wrong, an admin setting the date) did two kinds of
harm: stepped forward, a job's next run was found by walking from its last run to now one
interval at a time, so a 0.2 s worker counted three million ticks on the event loop after a
week's step (and a clock booted at 2000-01-01 would never finish); stepped back, every job
waited out the step before its next tick. :class:`SteadyInterval` starts afresh from now
after a forward step; :func:`watch_steps` notices a step either way, by the wall clock moving
unlike the monotonic one, says it once, and moves every job's next tick with the clock, so
that each keeps what was left of its interval (not all at once: a province's 48 gateways
stepped together would all read the directory; and not a full interval from now: steps
closer together than the housekeeping interval would put it off for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

WATCH_SECONDS = 1.0
STEP_SECONDS = 2.0  # more apart than this between the two clocks over one watch: a step


class SteadyInterval(IntervalTrigger):
    """An interval trigger that does not replay the ticks a forward step of the clock skipped."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is not None and (now - previous_fire_time).total_seconds() > 2 * self.interval_length:
            previous_fire_time = None  # computed from now: one step, not one per skipped interval
        return super().get_next_fire_time(previous_fire_time, now)


async def watch_steps(scheduler: BaseScheduler, log: Any, stopping: asyncio.Event) -> None:
    """Until ``stopping``: when the wall clock steps, every job's next tick moves with it."""
    wall, steady = time.time(), time.monotonic()
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), WATCH_SECONDS)
        now_wall, now_steady = time.time(), time.monotonic()
        step = (now_wall - wall) - (now_steady - steady)
        wall, steady = now_wall, now_steady
        if abs(step) > STEP_SECONDS and not stopping.is_set():
            log.warning("clock_stepped", seconds=round(step, 1), detail="every worker keeps the time to its next tick")
            now = datetime.now(UTC)
            for job in scheduler.get_jobs():
                if job.next_run_time is None:
                    continue
                # moved with the clock, it keeps what was left of its interval; a job the
                # scheduler already ran and rescheduled after a forward step is due within
                # an interval, whatever the step
                interval = timedelta(seconds=getattr(job.trigger, "interval_length", 0.0))
                moved = min(job.next_run_time + timedelta(seconds=step), now + interval)
                job.modify(next_run_time=max(moved, now))
