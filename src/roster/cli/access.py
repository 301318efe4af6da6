"""`roster sessions` (who is signed in to the app) and `roster mail` (the laptop's outbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from roster.cli.common import JsonOption, TenantOption, operator, out, print_json, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

sessions_app = typer.Typer(help="Sessions of the app and the console.", no_args_is_help=True)
mail_app = typer.Typer(help="Mail Roster sends (sign-in codes).", no_args_is_help=True)


@sessions_app.command("revoke-all")
def revoke_all(tenant: TenantOption) -> None:
    """Sign every user of the organization out of the app."""
    from roster.store import tenants, user_pages
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> int:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            return await user_pages.sign_out_everyone(conn, found.id, operator(), channel="cli")

    out.print(f"signed out {run(work)} app sessions of {tenant}")


@sessions_app.command("list")
def list_sessions(
    tenant: TenantOption,
    username: Annotated[str, typer.Option("--username", help="Whose sessions.")],
    as_json: JsonOption = False,
) -> None:
    """A user's active sessions."""
    from rich.table import Table

    from roster.store import directory_reads, sessions, tenants

    async def work(engine: AsyncEngine) -> list[sessions.Session]:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
            try:
                user_id = await directory_reads.user_id_of(conn, found.id, username)
            except LookupError:
                raise tenants.TenantError(f"{tenant} has no user {username}") from None
            return await sessions.active(conn, found.id, user_id)

    found = run(work)
    rows = [
        {"id": str(s.id), "kind": s.kind, "created_at": s.created_at.isoformat(),
         "expires_at": s.expires_at.isoformat()}
        for s in found
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table("id", "kind", "signed in (UTC)", "expires (UTC)")
    for s in found:
        table.add_row(
            str(s.id), s.kind, f"{s.created_at:%Y-%m-%d %H:%M}", f"{s.expires_at:%Y-%m-%d %H:%M}"
        )
    out.print(table)


@mail_app.command("outbox")
def outbox(
    last: Annotated[int, typer.Option("--last", help="How many of the newest.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The mail written to the outbox file (when no SMTP server is configured), newest last."""
    from roster import mail
    from roster.settings import get_settings

    messages = mail.outbox(get_settings())[-last:]
    if as_json:
        print_json(messages)
        return
    for message in messages:
        out.print(f"[bold]{message['at']}[/] to {message['to']}: {message['subject']}")
        out.print(message["body"], highlight=False)
