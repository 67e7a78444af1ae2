"""The axis process: the store opened, the server listening, housekeeping running, and a
clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import functools
import signal

from aiohttp import web

from gateway import edxml, logs
from gateway.axis.bridge import DIRECTORY_FRESH_SECONDS, Bridge
from gateway.axis.config import AxisConfig
from gateway.axis.server import Axis
from gateway.axis.store import AxisStore
from gateway.errors import GatewayError
from gateway.fsutil import instance_lock

CHECKPOINT_SECONDS = 1.0
FORGET_EVERY_TICKS = 60  # expired request signatures are forgotten once a minute


async def serve(config: AxisConfig, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then finish in-flight requests and close the store."""
    trust = None
    if config.trust is not None:
        try:
            more = config.intermediates.read_bytes() if config.intermediates else None
            trust = edxml.TrustStore.from_pem(config.trust.read_bytes(), more)
        except OSError as exc:
            raise GatewayError(
                f"trust store {exc.filename} cannot be read: {exc.strerror}", where=str(exc.filename)
            ) from None
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GatewayError(f"the data folder cannot be created: {exc.strerror}", where=str(config.data_dir)) from None
    with instance_lock(config.data_dir, "axis"):
        await _serve(config, trust, stop=stop)


async def _serve(config: AxisConfig, trust: edxml.TrustStore | None, *, stop: asyncio.Event | None) -> None:
    log = logs.get("axis")
    store = AxisStore(config.data_dir)
    try:
        store.seed_agencies(
            (a.code, a.name, a.mail, next((s.id for s in config.systems if a.code in s.agencies), None), a.locked)
            for a in config.agencies
        )
        removed = store.remove_orphan_files()
        axis = Axis(config, store, trust)
        bridge = None
        if config.upstream is not None:
            bridge = Bridge(config, store, axis.check, axis.long_polls.arrived)
            axis.bridge = bridge
            axis.directory.national = bridge.tables
            axis.directory.freshen = functools.partial(bridge.fresh_directory, DIRECTORY_FRESH_SECONDS)
        runner = web.AppRunner(axis.application(), access_log=None, handle_signals=False, shutdown_timeout=10)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else config.port
        log.info(
            "axis_listening",
            host=config.host,
            port=port,
            data_dir=str(config.data_dir),
            code=config.code,
            systems=len(config.systems),
            agencies=len(config.agencies),
            orphans_removed=removed,
            upstream=config.upstream.url if config.upstream else None,
        )
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        housekeeping = asyncio.create_task(_housekeeping(store))
        bridging = asyncio.Event()
        bridged = asyncio.create_task(bridge.run(bridging)) if bridge is not None else None
        await stop.wait()
        axis.close()
        log.info("axis_stopping")
        housekeeping.cancel()
        if bridged is not None:  # a call in flight to the upstream has no effect to lose
            bridging.set()
            await asyncio.gather(bridged, return_exceptions=True)
        await runner.cleanup()
        await axis.check.revocation.close()
    finally:
        store.close()
    log.info("axis_stopped", documents_committed=store.commits.steps, commits=store.commits.batches)


async def _housekeeping(store: AxisStore) -> None:
    """Every second a WAL checkpoint off the event loop; every minute the expired replay memory,
    a batch at a time. A failure is logged and tried again: it must not end the axis."""
    log = logs.get("axis")
    ticks = 0
    while True:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        ticks += 1
        try:
            await asyncio.to_thread(store.checkpoint)
            if ticks % FORGET_EVERY_TICKS == 0:
                while store.forget_expired_requests() > 0:
                    await asyncio.sleep(0)
        except Exception as exc:  # the disk, a locked database: say so, and try again next time
            log.warning("housekeeping_failed", reason=f"{type(exc).__name__}: {exc}")
