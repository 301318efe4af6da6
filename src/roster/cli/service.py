"""`roster serve`, `roster db upgrade` and `roster purge`: running Roster and its database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from roster.cli.common import err, out, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

db_app = typer.Typer(help="The database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""

    async def work(engine: AsyncEngine) -> None:
        return None

    run(work)
    err.print("database is up to date")


def purge() -> None:
    """Delete removed users whose retention period has passed."""
    from roster.store import directory
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> int:
        async with writing(engine) as conn:
            return await directory.purge_removed(conn)

    out.print(f"purged {run(work)} users")


def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Create a demo organization if there is none.")
    ] = False,
) -> None:
    """Run Roster's services: HTTP (console, SCIM, app API), SFTP drop boxes, the scheduler."""
    import uvloop

    from roster import logs, server
    from roster.settings import get_settings

    settings = get_settings()
    logs.configure(settings)
    if demo:
        run(_ensure_demo)
    # Where to go, whatever the log level: an address a browser on this machine can open
    # (listening on every interface includes the loopback one).
    every_interface = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104 (read, not bound)
    host = every_interface.get(settings.http_host, settings.http_host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{settings.http_port}"
    err.print(
        f"Control Centre: {url}/  SCIM: {url}/scim/v2  app API: {url}/app/v1", highlight=False
    )
    uvloop.run(server.serve(settings))  # uvloop: about a quarter less CPU a SCIM request


async def _ensure_demo(engine: AsyncEngine) -> None:
    from roster.domain import csvfile
    from roster.domain.mode import Mode
    from roster.jobs import imports as import_jobs
    from roster.store import tenants
    from roster.store.db import writing

    async with writing(engine) as conn:
        if await tenants.all_tenants(conn):
            return
        await tenants.create(conn, "demo", "Demo organization")
    await import_jobs.run_import(
        engine,
        "demo",
        csvfile.template().encode(),
        mode=Mode.ADD,
        channel="cli",
        actor="demo",
        file_name="template.csv",
    )
    err.print("created the demo organization 'demo' with one user (JanJ)")
