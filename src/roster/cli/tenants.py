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
