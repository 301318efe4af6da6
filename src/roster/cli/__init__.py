"""The `roster` command: thin wrappers that parse arguments, call jobs and store, and print."""

import logging
import sys
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.cli.access import mail_app, sessions_app
from roster.cli.admins import admin_app
from roster.cli.common import (
    JsonOption,
    TenantOption,
    err,
    operator,
    out,
    print_json,
    progress_output,
    run,
)
from roster.cli.dropbox import sftp_app, sync_app
from roster.cli.provisioning import scim_log
from roster.domain import csvfile
from roster.domain.fields import FIELD_NAMES
from roster.domain.mapping import MappingError
from roster.domain.plan import Mode
from roster.jobs import imports as import_jobs
from roster.settings import get_settings
from roster.store import directory, imports, scim_tokens, tenants
from roster.store.db import writing

app = typer.Typer(
    help="Roster: the user directory behind your workplace app.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
tenant_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="The directory's users.", no_args_is_help=True)
imports_app = typer.Typer(help="Import history and undo.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(users_app, name="users")
app.add_typer(imports_app, name="imports")
app.add_typer(db_app, name="db")
scim_app = typer.Typer(help="SCIM 2.0 provisioning (Entra ID, Okta).", no_args_is_help=True)
scim_token_app = typer.Typer(help="Bearer tokens for SCIM clients.", no_args_is_help=True)
scim_app.add_typer(scim_token_app, name="token")
scim_mapping_app = typer.Typer(
    help="Which SCIM attribute feeds which directory field.", no_args_is_help=True
)
scim_app.add_typer(scim_mapping_app, name="mapping")
scim_app.command("log")(scim_log)
app.add_typer(scim_app, name="scim")
app.add_typer(sftp_app, name="sftp")
app.add_typer(admin_app, name="admin")
app.add_typer(sessions_app, name="sessions")
app.add_typer(mail_app, name="mail")
app.add_typer(sync_app, name="sync")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""

    async def work(engine: AsyncEngine) -> None:
        return None

    run(work)
    err.print("database is up to date")


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Argument(help="Short name used everywhere, e.g. acme.")],
    name: Annotated[str, typer.Option("--name", help="The organization's full name.")],
) -> None:
    """Create an organization."""

    async def work(engine: AsyncEngine) -> tenants.Tenant:
        async with writing(engine) as conn:
            return await tenants.create(conn, slug, name)

    tenant = run(work)
    out.print(f"created organization {tenant.slug} ({tenant.name})")


@tenant_app.command("list")
def tenant_list(as_json: JsonOption = False) -> None:
    """List organizations."""

    async def work(engine: AsyncEngine) -> list[tenants.Tenant]:
        async with engine.connect() as conn:
            return await tenants.all_tenants(conn)

    found = run(work)
    if as_json:
        print_json([{"slug": t.slug, "name": t.name} for t in found])
        return
    for t in found:
        out.print(f"{t.slug}\t{t.name}")


PRINTED = 50  # errors, and warnings, an import prints without --json


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: TenantOption,
    mode: Annotated[Mode, typer.Option("--mode", help="add these users, or replace the list")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; write nothing.")
    ] = False,
    partial: Annotated[
        bool, typer.Option("--partial", help="Apply the valid rows even if some are invalid.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Override the deletion guard.")] = False,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Import a CSV file of users (the template's format)."""
    settings = get_settings()
    size = file.stat().st_size
    if size > settings.max_import_bytes:
        issue = csvfile.too_large(size, settings.max_import_bytes)

        async def refuse(engine: AsyncEngine) -> import_jobs.ImportReport:
            return await import_jobs.refuse(
                engine,
                tenant,
                issue,
                channel="cli",
                actor=operator(),
                file_name=file.name,
                mode=mode,
            )

        report = run(refuse, as_json)
    else:
        data = file.read_bytes()

        async def work(engine: AsyncEngine) -> import_jobs.ImportReport:
            with progress_output(not quiet) as show:
                return await import_jobs.run_import(
                    engine,
                    tenant,
                    data,
                    mode=mode,
                    channel="cli",
                    actor=operator(),
                    file_name=file.name,
                    dry_run=dry_run,
                    partial=partial,
                    force=force,
                    max_bytes=settings.max_import_bytes,
                    progress=show,
                    max_problems=settings.max_reported_problems,
                )

        report = run(work, as_json)
    if as_json:
        print_json(report.as_json())
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: import_jobs.ImportReport) -> None:
    colour = "green" if report.ok else "red"
    out.print(f"[bold {colour}]{report.status}[/]", end="")
    if report.import_id:
        out.print(f"  import {report.import_id}", end="")
    out.print()
    if report.counts:
        out.print("  ".join(f"{name}: {count}" for name, count in report.counts.items()))
    if report.held:
        out.print(f"[yellow]held:[/] {report.held}. Re-run with --force to apply it.")
    if report.status == "dry_run" and report.plan is not None:
        plan = import_jobs.describe(report.plan)
        for name in plan["added"]:
            out.print(f"[green]+ {name}[/]")
        for update in plan["updated"]:
            changes = ", ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in update["changes"].items())
            out.print(f"[yellow]~ {update['username']}[/] {changes}", highlight=False)
        for name in plan["removed"]:
            out.print(f"[red]- {name}[/]")
    problems = report.problems
    for title, issues, total in (
        ("errors", problems.errors, problems.error_total),
        ("warnings", problems.warnings, problems.warning_total),
    ):
        if total:
            out.print(f"[bold]{title} ({total:,}):[/]")
            for issue in issues[:PRINTED]:
                out.print(f"  {issue}", highlight=False, markup=False)
            printed = min(len(issues), PRINTED)
            if total > printed:
                more = f"  ... and {total - printed:,} more"
                if len(issues) > printed:
                    more += f" (--json lists the first {len(issues):,} {title})"
                out.print(more, highlight=False)


@users_app.command("list")
def users_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """List the organization's users."""

    async def work(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
            return await directory.list_users(conn, found.id)

    found_users = run(work)
    if as_json:
        fields = ("id", *FIELD_NAMES, "active", "role")
        print_json([{name: u[name] for name in fields} for u in found_users])
        return
    table = Table("username", "display name", "e-mail", "department", "active", "role")
    for u in found_users:
        table.add_row(
            u["username"],
            u["display_name"],
            u["email"],
            u["department"] or "",
            "yes" if u["active"] else "no",
            u["role"],
        )
    out.print(table)
    out.print(f"{len(found_users)} users")


@app.command("template")
def template() -> None:
    """Print the CSV template: the header and an example row."""
    sys.stdout.buffer.write(csvfile.template().encode())  # bytes: keep the CRLF line ends


@imports_app.command("list")
def imports_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The organization's import history, newest first."""

    async def work(engine: AsyncEngine) -> list[imports.ImportRecord]:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
            return await imports.history(conn, found.id)

    records = run(work)
    if as_json:
        print_json(
            [
                {
                    "id": str(r.id),
                    "created_at": r.created_at.isoformat(),
                    "channel": r.channel,
                    "actor": r.actor,
                    "file_name": r.file_name,
                    "mode": r.mode,
                    "status": r.status,
                    "counts": r.counts,
                    "report": r.report,
                }
                for r in records
            ]
        )
        return
    table = Table("id", "when (UTC)", "channel", "file", "mode", "status", "changes")
    for r in records:
        changes = " ".join(f"{k[0]}{v}" for k, v in r.counts.items() if v)
        table.add_row(
            str(r.id),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.channel,
            r.file_name or "",
            r.mode,
            r.status,
            changes,
        )
    out.print(table)


@imports_app.command("undo")
def imports_undo(
    import_id: Annotated[UUID, typer.Argument(help="The import to undo (from imports list).")],
    as_json: JsonOption = False,
) -> None:
    """Restore what an import changed, if those users have not changed since."""

    async def work(engine: AsyncEngine) -> import_jobs.ImportReport:
        return await import_jobs.undo(
            engine, import_id, channel="cli", actor=operator(),
            max_problems=get_settings().max_reported_problems,
        )  # fmt: skip

    report = run(work, as_json)
    if as_json:
        print_json(report.as_json())
    elif report.status == "blocked":
        err.print("[red]cannot undo:[/] these users block it:")
        for issue in report.issues:
            err.print(f"  {issue.message}", markup=False)
        if left_out := report.problems.left_out():
            err.print(f"  {left_out}", markup=False)
    else:
        out.print(f"undone: {report.counts}")
    raise typer.Exit(0 if report.ok else 1)


@scim_token_app.command("create")
def scim_token_create(
    tenant: TenantOption,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. entra-id.")],
) -> None:
    """Create a token; it is printed once, alone on stdout, and only its hash is kept."""

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

    async def work(engine: AsyncEngine) -> bool:
        async with writing(engine) as conn:
            return await scim_tokens.revoke(conn, (await tenants.get(conn, tenant)).id, token_id)

    if not run(work):
        err.print(f"[red]error:[/] no active token {token_id} in {tenant}")
        raise typer.Exit(1)
    out.print(f"revoked token {token_id}")


def _print_mapping(found: dict[str, str | None], as_json: bool) -> None:
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


@app.command("purge")
def purge() -> None:
    """Delete removed users whose retention period has passed."""

    async def work(engine: AsyncEngine) -> int:
        async with writing(engine) as conn:
            return await directory.purge_removed(conn)

    out.print(f"purged {run(work)} users")


@app.command("serve")
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Create a demo organization if there is none.")
    ] = False,
) -> None:
    """Run Roster's services: HTTP (console, SCIM, app API), SFTP drop boxes, the scheduler."""
    import uvloop

    from roster import server

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if demo:
        run(_ensure_demo)
    uvloop.run(server.serve(settings))  # uvloop: about a quarter less CPU a SCIM request


async def _ensure_demo(engine: AsyncEngine) -> None:
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


def main() -> None:
    app()
