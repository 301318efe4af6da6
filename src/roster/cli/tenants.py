"""`roster tenant`: organizations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from roster.cli.common import JsonOption, out, print_json, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

tenant_app = typer.Typer(help="Organizations.", no_args_is_help=True)


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Argument(help="Short name used everywhere, e.g. acme.")],
    name: Annotated[str, typer.Option("--name", help="The organization's full name.")],
) -> None:
    """Create an organization."""
    from roster.store import tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> tenants.Tenant:
        async with writing(engine) as conn:
            return await tenants.create(conn, slug, name)

    tenant = run(work)
    out.print(f"created organization {tenant.slug} ({tenant.name})")


@tenant_app.command("list")
def tenant_list(as_json: JsonOption = False) -> None:
    """List organizations."""
    from roster.store import tenants

    async def work(engine: AsyncEngine) -> list[tenants.Tenant]:
        async with engine.connect() as conn:
            return await tenants.all_tenants(conn)

    found = run(work)
    if as_json:
        print_json([{"slug": t.slug, "name": t.name} for t in found])
        return
    for t in found:
        out.print(f"{t.slug}\t{t.name}")


@tenant_app.command("settings")
def tenant_settings(
    slug: Annotated[str, typer.Argument(help="The organization's slug.")],
    name: Annotated[str | None, typer.Option("--name", help="Its full name.")] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA zone its times are shown in, e.g. Europe/Amsterdam."),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option("--retention-days", help="Days removed users and old records are kept."),
    ] = None,
    guard_percent: Annotated[
        int | None, typer.Option("--guard-percent", help="Deletion guard: percentage (1-100).")
    ] = None,
    guard_min_users: Annotated[
        int | None, typer.Option("--guard-min-users", help="Deletion guard: minimum users.")
    ] = None,
    notices_off: Annotated[
        str | None,
        typer.Option(
            "--notices-off",
            help="Notices its admins are not mailed, comma-separated (held, rejected, stale, "
            "scim_refusals); '' mails them all.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show an organization's settings, or change those given."""
    from roster.domain.plan import Guard
    from roster.store import tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> tenants.Tenant:
        async with writing(engine) as conn:
            found = await tenants.get(conn, slug)
            guard = None
            if guard_percent is not None or guard_min_users is not None:
                guard = Guard(
                    found.guard.percent if guard_percent is None else guard_percent,
                    found.guard.min_users if guard_min_users is None else guard_min_users,
                )
            return await tenants.configure(
                conn, found.id, name=name, timezone=timezone, retention_days=retention_days,
                guard=guard, notices_off=None if notices_off is None else [
                    kind.strip() for kind in notices_off.split(",") if kind.strip()
                ],
            )  # fmt: skip

    t = run(work)
    shown = {
        "slug": t.slug, "name": t.name, "timezone": t.timezone,
        "retention_days": t.retention_days, "guard_percent": t.guard.percent,
        "guard_min_users": t.guard.min_users, "notices_off": sorted(t.notices_off),
    }  # fmt: skip
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        out.print(f"{key}\t{','.join(value) if isinstance(value, list) else value}")
