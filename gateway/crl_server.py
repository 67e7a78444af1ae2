"""`edxml-gateway pki serve`: publish a development PKI's CRLs over HTTP, as a CA does, and
issue them anew when they are past half their life, so gateways that cache them until their
nextUpdate always find a fresh one."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from aiohttp import web

from gateway import logs
from gateway.pki_folder import CRL_FOLDER, crls_due, write_crls

REISSUE_CHECK_SECONDS = 30.0


def application(folder: Path) -> web.Application:
    async def crl(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            data = (folder / CRL_FOLDER / f"{name}.crl").read_bytes()
        except FileNotFoundError:
            raise web.HTTPNotFound(text=f"no CRL named {name}.crl\n") from None
        return web.Response(body=data, content_type="application/pkix-crl")

    app = web.Application()
    app.router.add_get(r"/{name:[a-z]+}.crl", crl)
    return app


async def serve(folder: Path, host: str, port: int, *, stop: asyncio.Event | None = None) -> None:
    log = logs.get("crl")
    runner = web.AppRunner(application(folder), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("crl_serving", host=host, port=bound, folder=str(folder))
    try:
        while not stop.is_set():
            if await asyncio.to_thread(crls_due, folder):
                written = await asyncio.to_thread(write_crls, folder)
                log.info("crl_issued", files=[path.name for path in written])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REISSUE_CHECK_SECONDS)
    finally:
        await runner.cleanup()
