"""`edxml-gateway run`: the workers on an apscheduler (3.x) loop until SIGTERM.

SIGTERM stops new runs, lets the runs in flight finish (each run is a bounded batch),
and exits within 12 s, or once a worker thread still writing has finished; whatever a run
did not finish is in the database and resumes at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway import logs
from gateway.config import Config, ConfigError
from gateway.daemon import health
from gateway.daemon.clock import SteadyInterval, watch_steps
from gateway.daemon.dropwatch import DropWatch
from gateway.daemon.service import Gateway
from gateway.errors import StoreError
from gateway.fsutil import instance_lock
from gateway.vxp.vocabulary import MessageType

GRACE_SECONDS = 8.0  # for the runs in flight at stop
THREADS_GRACE_SECONDS = 4.0  # then for worker threads, said before the units' TimeoutStopSec (15 s)


async def run(config: Config, *, stop: asyncio.Event | None = None) -> None:
    try:
        config.paths.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"the data folder {config.paths.data_dir} cannot be created: {exc.strerror} (a relative path is"
            " read from the configuration file's folder; under systemd give an absolute one in /var/lib)",
            where=f"{config.path}: paths.data_dir",
        ) from None
    with instance_lock(config.paths.data_dir, "gateway"):
        await _run(config, stop=stop)


async def _run(config: Config, *, stop: asyncio.Event | None) -> None:
    # apscheduler's own warnings ("skipped: maximum number of running instances reached") are
    # expected under load and are not JSON: keep only its errors.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    # made in a worker thread: each agency's key signs a probe at start, and a USB token's may
    # take a tenth of a second (token_keys logs it as an error when asked from the event loop)
    gateway = await asyncio.to_thread(Gateway, config)
    # Every line of this process names an agency: lines about one hosted agency bind its code,
    # the rest (libraries' own records too) the installation's, through the context.
    structlog.contextvars.bind_contextvars(agency=gateway.code)
    log = logs.get("gateway").bind(agency=gateway.code)
    inflight: set[asyncio.Task] = set()
    stopping = asyncio.Event()

    running: set[str] = set()
    again: set[str] = set()

    def worker(name: str, run_once: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """One worker's run: a tick of the scheduler or a wake-up, never two at once; a wake-up
        during a run makes the run go round once more, so no new work waits for the next tick."""

        async def job() -> None:
            if stopping.is_set():
                return
            if name in running:
                again.add(name)
                return
            task = asyncio.current_task()
            assert task is not None
            inflight.add(task)
            running.add(name)
            try:
                while True:
                    again.discard(name)
                    try:
                        await run_once()
                    except sqlite3.OperationalError as exc:  # locked for longer than busy_timeout, disk full
                        log.error("database_error", worker=name, code=StoreError.code, reason=str(exc))
                    except Exception:  # a worker's bug must not stop the service; it is logged with its trace
                        log.exception("worker_error", worker=name)
                    if name not in again or stopping.is_set():
                        break
            except asyncio.CancelledError:
                if not stopping.is_set():
                    raise
                # cut short at stop, after the grace period: said once here, not as the scheduler's
                # "job raised an exception" traceback
                log.info("worker_cut_short", worker=name)
            finally:
                running.discard(name)
                inflight.discard(task)

        job.__name__ = name
        return job

    intervals = config.workers
    workers = {
        "intake": (gateway.intake, intervals.intake),
        "push": (gateway.push, intervals.push),
        "deliver": (gateway.deliver, intervals.deliver),
        "respond": (gateway.respond, intervals.respond),
        "retry": (gateway.retry, intervals.retry),
        "housekeeping": (gateway.housekeeping, intervals.housekeeping),
        # the axis directory and the registration of hosted agencies; also woken by intake
        # (a recipient the directory lacked) and retry (an agency not registered yet)
        "directory": (gateway.refresh_directory, intervals.housekeeping),
    }
    jobs = {name: worker(name, run_once) for name, (run_once, _) in workers.items()}
    woken: set[asyncio.Task] = set()

    def wake(name: str) -> None:
        if stopping.is_set():
            return
        if name in running:
            again.add(name)
            return
        task = asyncio.get_running_loop().create_task(jobs[name]())
        woken.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(woken.discard)

    gateway.wake = wake
    removed = await asyncio.to_thread(gateway.tidy_after_crash)
    if removed:
        log.info("inbox_leftovers_removed", removed=removed)
    scheduler = AsyncIOScheduler(timezone=UTC)
    watch = _watch_drop_folders(config, gateway, wake, scheduler, log)
    if watch is not None:  # intake is woken by the kernel; its tick is only the rescan
        workers["intake"] = (gateway.intake, max(intervals.intake, config.intake.rescan_seconds))
    for name, (_, seconds) in workers.items():
        scheduler.add_job(
            jobs[name],
            SteadyInterval(seconds=seconds, timezone=UTC),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    scheduler.start()
    # Listening is not a periodic job: each kind has a loop that long-polls, or looks every
    # [poll] interval when the axis has no long-poll; see Gateway.listen.
    listeners = [asyncio.create_task(gateway.listen(kind, stopping), name=f"listen-{kind}") for kind in MessageType]
    listeners.append(asyncio.create_task(watch_steps(scheduler, log, stopping), name="clock"))
    log.info(
        "gateway_started",
        axis=config.axis.url if config.axis else None,
        inbox=str(gateway.inbox),
        outbox=str(gateway.outbox),
        hosted=[code for code in gateway.local.agencies if code != gateway.code],
        workers={name: seconds for name, (_, seconds) in workers.items()},
        drop_folders="polled" if watch is None else "watched",
        poll={"interval": config.poll.interval, "long_poll": config.poll.long_poll},
    )
    for relaxed in health.relaxed_checks(config):
        log.warning("signature_checks_relaxed", setting=relaxed)
    try:
        await stop.wait()
    finally:
        log.info("gateway_stopping", in_flight=len(inflight))
        stopping.set()
        scheduler.shutdown(wait=False)
        if watch is not None:
            watch.close()
        for listener in listeners:  # a list in flight has no effect to lose
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        if inflight:
            await asyncio.wait(set(inflight), timeout=GRACE_SECONDS)
        # A cancelled job's worker thread goes on (asyncio.to_thread cannot stop it): closing
        # the database under a thread still using it crashed the process (SIGSEGV) at stop, and
        # letting the data folder's lock go before it ends would let a new start remove the
        # inbox folder it is writing as a crash's leftover. So it is waited for (under systemd,
        # until TimeoutStopSec's SIGKILL, which ends the thread and the lock together).
        threads = asyncio.ensure_future(loop.shutdown_default_executor())
        try:
            await asyncio.wait_for(asyncio.shield(threads), THREADS_GRACE_SECONDS)
        except TimeoutError:
            log.warning("gateway_stop_threads_busy", detail="waiting for a worker thread before the process ends")
            await threads
        await gateway.close()
        log.info("gateway_stopped")


def _watch_drop_folders(
    config: Config, gateway: Gateway, wake: Callable[[str], None], scheduler: AsyncIOScheduler, log: Any
) -> DropWatch | None:
    """Every hosted agency's drop folder watched (inotify), or None: they are read every
    [workers] intake seconds instead (said why); a watch lost later puts intake back on that tick."""
    if not config.intake.watch:
        return None

    def lost(reason: str) -> None:
        log.warning("drop_folders_polled", reason=reason, every=config.workers.intake)
        scheduler.reschedule_job("intake", trigger=SteadyInterval(seconds=config.workers.intake, timezone=UTC))
        wake("intake")

    watch = DropWatch.start((intake.outbox for intake in gateway.intakes), wake=lambda: wake("intake"), on_lost=lost)
    if isinstance(watch, str):
        log.warning("drop_folders_polled", reason=watch, every=config.workers.intake)
        return None
    return watch
