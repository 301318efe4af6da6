"""`roster serve`: every network service of Roster in one event loop (HTTP, SFTP, scheduler)."""

import asyncio
import contextlib
import gc
import logging
import sys

import uvicorn

from roster import scheduler, sftp
from roster.domain import passwords
from roster.settings import Settings
from roster.store.db import create_engine, migrate
from roster.web.app import create_app

SWITCH_SECONDS = 0.0005
log = logging.getLogger("roster.server")


async def serve(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url, settings.database_connections)
    await migrate(engine)
    passwords.prepare()  # the first sign-in that names nobody takes as long as the rest
    app = create_app(engine, settings.scim_rate_limit, settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        lifespan="on",
        access_log=False,
        # The app reads X-Forwarded-For itself, from ROSTER_TRUSTED_PROXIES alone (uvicorn's
        # own would trust any local process).
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    drop_boxes = await sftp.start(engine, settings)
    log.info("SFTP on %s:%s", settings.sftp_host, settings.sftp_port)
    clock = asyncio.create_task(scheduler.run(engine, settings))
    log.info("HTTP on http://%s:%s", settings.http_host, settings.http_port)
    # What startup made (modules, routes, tables, compiled statements) lives as long as the
    # process: out of the collector's generations, full collections no longer scan it.
    gc.freeze()
    # Worker threads (a long PATCH, an import's parse and plan) hand the interpreter's lock back
    # this often: at the default 5 ms, the event loop waited for its turns for most of their run.
    sys.setswitchinterval(SWITCH_SECONDS)
    try:
        await server.serve()
    finally:
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock
        drop_boxes.close()
        await drop_boxes.wait_closed()
        await engine.dispose()
