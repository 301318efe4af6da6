"""`roster admin`: the first admin of an organization, from the command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from roster.cli.common import TenantOption, err, operator, out, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

admin_app = typer.Typer(help="Admins of the Control Centre.", no_args_is_help=True)


@admin_app.command("create")
def admin_create(
    tenant: TenantOption,
    email: Annotated[str, typer.Option("--email", help="The admin's e-mail address.")],
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    surname: Annotated[str | None, typer.Option("--surname")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
) -> None:
    """Make the user with this e-mail an admin (creating the user when there is none) and set
    the password read from stdin (at least 12 characters)."""
    from roster.domain.passwords import hash_password
    from roster.jobs import people
    from roster.store import admins, directory_reads, tenants
    from roster.store.db import writing

    if sys.stdin.isatty():
        err.print("Password (then Enter):", end=" ")
    try:
        hashed = hash_password(sys.stdin.readline().rstrip("\r\n"))
    except ValueError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None

    async def work(engine: AsyncEngine) -> str:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
            existing = await directory_reads.user_id_by_email(conn, found.id, email)
        if existing is None:
            if not first_name or not surname:
                raise tenants.TenantError(
                    f"{tenant} has no user {email}: give --first-name and --surname to create one"
                )
            raw = {
                "username": username or email.split("@")[0],
                "first_name": first_name,
                "surname": surname,
                "display_name": f"{first_name} {surname}"[:20].strip(),
                "email": email,
            }
            outcome = await people.add(
                engine, found.id, raw, channel="cli", actor=operator(), role="admin"
            )
            if not outcome.ok or outcome.user_id is None:
                raise tenants.TenantError("; ".join(i.message for i in outcome.issues))
            user_id, verb = outcome.user_id, "created"
        else:
            user_id, verb = existing, "made"
            await people.change(
                engine, found.id, user_id, {"role": "admin", "active": True},
                channel="cli", actor=operator(),
            )  # fmt: skip
        async with writing(engine) as conn:
            await admins.set_password(conn, found.id, user_id, hashed)
        return f"{verb} admin {email} of {tenant}"

    out.print(run(work))


@admin_app.command("reset-2fa")
def admin_reset_2fa(
    tenant: TenantOption,
    email: Annotated[str, typer.Option("--email", help="The admin's e-mail address.")],
) -> None:
    """Turn an admin's two-step sign-in off (a lost phone, or an authenticator someone else
    enrolled) and sign them out of the Control Centre; recorded in the audit log."""
    from roster.store import admins, sessions, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> str:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            admin = await admins.by_email(conn, found.id, email)
            if admin is None:
                raise tenants.TenantError(f"{tenant} has no active admin {email}")
            was = "on" if admin.totp_secret else "already off"
            await admins.set_totp(conn, admin, None, channel="cli", actor=operator())
            ended = await sessions.revoke_kinds(
                conn, found.id, admin.user_id, ("console", "console-2fa")
            )
        return (
            f"two-step sign-in of {email} ({tenant}) is off (it was {was}); "
            f"{ended} Control Centre session(s) signed out"
        )

    out.print(run(work))
