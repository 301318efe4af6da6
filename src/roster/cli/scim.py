"""`roster scim`: tokens, the attribute mapping and the provisioning log of SCIM clients."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from roster.cli.common import JsonOption, TenantOption, err, out, print_json, run
from roster.cli.provisioning import scim_log

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

scim_app = typer.Typer(help="SCIM 2.0 provisioning (Entra ID, Okta).", no_args_is_help=True)
scim_token_app = typer.Typer(help="Bearer tokens for SCIM clients.", no_args_is_help=True)
scim_app.add_typer(scim_token_app, name="token")
scim_mapping_app = typer.Typer(
    help="Which SCIM attribute feeds which directory field.", no_args_is_help=True
)
scim_app.add_typer(scim_mapping_app, name="mapping")
scim_app.command("log")(scim_log)


@scim_token_app.command("create")
def scim_token_create(
    tenant: TenantOption,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. entra-id.")],
) -> None:
    """Create a token; it is printed once, alone on stdout, and only its hash is kept."""
    from roster.store import scim_tokens, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> str:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            try:
                _, secret = await scim_tokens.create(conn, found.id, name)
            except ValueError as error:
                raise tenants.TenantError(str(error)) from None
            return secret

    secret = run(work)
    sys.stdout.write(secret + "\n")
    err.print("Copy it now: it cannot be shown again.")


@scim_token_app.command("list")
def scim_token_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The organization's SCIM tokens (never their secrets)."""
    from rich.table import Table

    from roster.store import scim_tokens, tenants

    async def work(engine: AsyncEngine) -> list[scim_tokens.Token]:
        async with engine.connect() as conn:
            return await scim_tokens.listed(conn, (await tenants.get(conn, tenant)).id)

    found = run(work)
    rows = [
        {
            "id": str(t.id),
            "name": t.name,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked": t.revoked_at is not None,
        }
        for t in found
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "created (UTC)", "last used (UTC)", "state")
    for t in found:
        state = "revoked" if t.revoked_at else "active"
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        table.add_row(str(t.id), t.name, t.created_at.strftime("%Y-%m-%d %H:%M"), used, state)
    out.print(table)


@scim_token_app.command("revoke")
def scim_token_revoke(
    tenant: TenantOption,
    token_id: Annotated[UUID, typer.Argument(help="The token's id (from scim token list).")],
) -> None:
    """Revoke a token: requests that present it get 401 from now on."""
    from roster.store import scim_tokens, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> bool:
        async with writing(engine) as conn:
            return await scim_tokens.revoke(conn, (await tenants.get(conn, tenant)).id, token_id)

    if not run(work):
        err.print(f"[red]error:[/] no active token {token_id} in {tenant}")
        raise typer.Exit(1)
    out.print(f"revoked token {token_id}")


def _print_mapping(found: dict[str, str | None], as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        print_json(found)
        return
    table = Table("field", "SCIM attribute")
    for field_name, source in found.items():
        table.add_row(field_name, source or "(off)")
    out.print(table)


@scim_mapping_app.command("show")
def scim_mapping_show(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The organization's SCIM attribute mapping."""
    from roster.store import tenants

    async def work(engine: AsyncEngine) -> dict[str, str | None]:
        async with engine.connect() as conn:
            return await tenants.scim_mapping(conn, (await tenants.get(conn, tenant)).id)

    _print_mapping(run(work), as_json)


@scim_mapping_app.command("set")
def scim_mapping_set(
    tenant: TenantOption,
    field_name: Annotated[str, typer.Argument(metavar="FIELD", help="e.g. phone, display_name")],
    source: Annotated[
        str,
        typer.Argument(help='A SCIM attribute (e.g. "name.formatted"), "off" or "default".'),
    ],
    as_json: JsonOption = False,
) -> None:
    """Feed a field from another SCIM attribute, switch it off, or restore the default."""
    from roster.domain.mapping import MappingError
    from roster.store import tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> dict[str, str | None]:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            try:
                return await tenants.choose_scim_source(
                    conn, found.id, field_name, None if source == "off" else source
                )
            except MappingError as error:
                err.print(f"[red]error:[/] {error}", markup=True, highlight=False)
                raise typer.Exit(1) from None

    _print_mapping(run(work), as_json)
