"""`roster sftp` (the drop box account) and `roster sync` (its pickups)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from roster.cli.common import JsonOption, TenantOption, err, operator, out, print_json, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from roster.jobs import pickup as pickups
    from roster.jobs.dropbox_files import Folders
    from roster.store import dropboxes

sftp_app = typer.Typer(help="The organization's SFTP drop box account.", no_args_is_help=True)
key_app = typer.Typer(help="Public keys that may log in to the drop box.", no_args_is_help=True)
sftp_app.add_typer(key_app, name="key")
sync_app = typer.Typer(help="Pickups of the drop box's file.", no_args_is_help=True)


def _folders() -> Folders:
    from roster.jobs.dropbox_files import Folders
    from roster.settings import get_settings

    return Folders.of(get_settings())


async def _tenant_id(engine: AsyncEngine, slug: str) -> UUID:
    from roster.store import tenants

    async with engine.connect() as conn:
        return (await tenants.get(conn, slug)).id


@sftp_app.command("enable")
def sftp_enable(tenant: TenantOption) -> None:
    """Create (or re-enable) the organization's account; its username is the slug."""
    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> dropboxes.Dropbox:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            return await dropboxes.enable(conn, found.id, found.timezone)

    box = run(work)
    _folders().prepare(box.slug)
    out.print(f"SFTP account {box.slug} is enabled; set a password or add a key to log in")


@sftp_app.command("disable")
def sftp_disable(tenant: TenantOption) -> None:
    """Refuse logins and stop pickups (the folder, password and keys are kept)."""
    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> None:
        async with writing(engine) as conn:
            await dropboxes.disable(conn, (await tenants.get(conn, tenant)).id)

    run(work)
    out.print(f"SFTP account {tenant} is disabled")


@sftp_app.command("password")
def sftp_password(
    tenant: TenantOption,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the password.")] = False,
) -> None:
    """Set the account's password, read from stdin (at least 12 characters)."""
    from roster.domain.passwords import hash_password
    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    if clear:
        hashed = None
    else:
        if sys.stdin.isatty():
            err.print("Password (then Enter):", end=" ")
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            hashed = hash_password(password)
        except ValueError as error:
            err.print(f"[red]error:[/] {error}")
            raise typer.Exit(2) from None

    async def work(engine: AsyncEngine) -> None:
        async with writing(engine) as conn:
            await dropboxes.set_password(conn, (await tenants.get(conn, tenant)).id, hashed)

    run(work)
    out.print(f"the password of SFTP account {tenant} is {'removed' if clear else 'set'}")


@key_app.command("add")
def key_add(
    tenant: TenantOption,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Authorize an OpenSSH public key file (e.g. id_ed25519.pub)."""
    import asyncssh

    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    data = file.read_bytes()
    if b"PRIVATE KEY" in data:
        err.print(
            f"[red]error:[/] {file} is a private key: give its .pub file, keep this one secret"
        )
        raise typer.Exit(2)
    try:
        key = asyncssh.import_public_key(data)
    except (asyncssh.KeyImportError, ValueError) as error:
        err.print(f"[red]error:[/] {file} is not an OpenSSH public key: {error}")
        raise typer.Exit(2) from None
    fingerprint = key.get_fingerprint("sha256")
    text = key.export_public_key("openssh").decode().strip()
    comment = key.get_comment() or file.name

    async def work(engine: AsyncEngine) -> None:
        async with writing(engine) as conn:
            found = await tenants.get(conn, tenant)
            await dropboxes.add_key(conn, found.id, fingerprint, text, comment)

    run(work)
    out.print(f"authorized {fingerprint} ({comment}) for {tenant}")


@key_app.command("remove")
def key_remove(
    tenant: TenantOption,
    fingerprint: Annotated[str, typer.Argument(help="SHA256:... as `roster sftp show` lists")],
) -> None:
    """Stop a key from logging in."""
    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> None:
        async with writing(engine) as conn:
            await dropboxes.remove_key(conn, (await tenants.get(conn, tenant)).id, fingerprint)

    run(work)
    out.print(f"removed {fingerprint} from {tenant}")


@sftp_app.command("settings")
def sftp_settings(
    tenant: TenantOption,
    file_name: Annotated[
        str | None, typer.Option("--file-name", help="The file that is picked up.")
    ] = None,
    daily_time: Annotated[
        str | None, typer.Option("--daily-time", help="HH:MM of the daily pickup.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="The organization's IANA zone, e.g. Europe/Amsterdam (also `roster tenant "
            "settings`).",
        ),
    ] = None,
    process_on_upload: Annotated[
        bool | None,
        typer.Option(
            "--process-on-upload/--no-process-on-upload",
            help="Also pick the file up a few seconds after each complete upload.",
        ),
    ] = None,
) -> None:
    """Change how and when the drop box's file is picked up."""
    from roster.store import dropboxes, tenants
    from roster.store.db import writing

    async def work(engine: AsyncEngine) -> dropboxes.Dropbox:
        async with writing(engine) as conn:
            tenant_id = (await tenants.get(conn, tenant)).id
            if timezone is not None:
                await tenants.configure(conn, tenant_id, timezone=timezone)
            return await dropboxes.configure(
                conn,
                tenant_id,
                file_name=file_name,
                daily=daily_time,
                process_on_upload=process_on_upload,
            )

    _print_box(run(work), [], False)


@sftp_app.command("show")
def sftp_show(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The account: how to connect, the host key's fingerprint, keys and pickup settings."""
    from roster.store import dropboxes, tenants

    async def work(engine: AsyncEngine) -> tuple[dropboxes.Dropbox, list[dropboxes.Key]]:
        async with engine.connect() as conn:
            found = await dropboxes.get(conn, (await tenants.get(conn, tenant)).id)
            return found, await dropboxes.keys(conn, found.tenant_id)

    box, keys = run(work)
    _print_box(box, keys, as_json)


def _print_box(box: dropboxes.Dropbox, keys: list[dropboxes.Key], as_json: bool) -> None:
    from roster.settings import get_settings
    from roster.sftp import host_key

    settings = get_settings()
    data: dict[str, Any] = {
        "username": box.slug,
        "enabled": box.enabled,
        "host": settings.sftp_host,
        "port": settings.sftp_port,
        "host_key": host_key(settings.data_dir).get_fingerprint("sha256"),
        "password": box.password_hash is not None,
        "keys": [{"fingerprint": k.fingerprint, "comment": k.comment} for k in keys],
        "file_name": box.file_name,
        "daily_time": box.daily_time,
        "timezone": box.timezone,
        "process_on_upload": box.process_on_upload,
        "next_daily_pickup": box.next_daily_at.isoformat(),
    }
    if as_json:
        print_json(data)
        return
    for name, value in data.items():
        if name != "keys":
            out.print(f"{name:<18} {value}", highlight=False)
    for k in keys:
        out.print(f"{'key':<18} {k.fingerprint} {k.comment}", highlight=False)


@sync_app.command("run")
def sync_run(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """Pick up the drop box's file now."""
    from roster.jobs import pickup as pickups
    from roster.settings import get_settings
    from roster.store.imports import ImportStatus

    settings = get_settings()

    async def work(engine: AsyncEngine) -> pickups.Pickup:
        return await pickups.pickup(
            engine, _folders(), tenant, trigger="cli", max_bytes=settings.max_import_bytes,
            max_problems=settings.max_reported_problems,
        )  # fmt: skip

    result = run(work, as_json)
    data = {
        "status": result.status,
        "import_id": str(result.import_id) if result.import_id else None,
        "counts": result.report.counts if result.report else None,
        "errors": [i.as_dict() for i in result.report.errors] if result.report else [],
        "error_count": result.report.problems.error_total if result.report else 0,
        "ignored": result.ignored,
        "report_file": result.report_file.name if result.report_file else None,
    }
    if as_json:
        print_json(data)
    else:
        messages = {
            "busy": "a pickup for this organization is running elsewhere; nothing done",
            "no_file": "there is no file to pick up",
        }
        out.print(messages.get(result.status, f"{result.status}, import {result.import_id}"))
        if result.report_file:
            out.print(f"report: results/{result.report_file.name}", highlight=False)
    done = (ImportStatus.APPLIED, ImportStatus.SKIPPED, pickups.NoPickup.NO_FILE)
    raise typer.Exit(0 if result.status in done else 1)


@sync_app.command("approve")
def sync_approve(
    tenant: TenantOption, import_id: Annotated[UUID, typer.Argument(help="The held pickup.")]
) -> None:
    """Apply a held pickup (the deletion guard stopped it), planned again against today's
    directory."""
    from roster.jobs import pickup as pickups
    from roster.settings import get_settings
    from roster.store.imports import ImportStatus

    settings = get_settings()

    async def work(engine: AsyncEngine) -> Any:
        return await pickups.approve(
            engine,
            _folders(),
            tenant,
            import_id,
            actor=operator(),
            max_bytes=settings.max_import_bytes,
            max_problems=settings.max_reported_problems,
        )

    report = run(work)
    out.print(f"{report.status}, import {report.import_id}: {report.counts}")
    raise typer.Exit(0 if report.status == ImportStatus.APPLIED else 1)


@sync_app.command("discard")
def sync_discard(
    tenant: TenantOption, import_id: Annotated[UUID, typer.Argument(help="The held pickup.")]
) -> None:
    """Drop a held pickup without applying it."""
    from roster.jobs import pickup as pickups

    async def work(engine: AsyncEngine) -> None:
        await pickups.discard(engine, _folders(), tenant, import_id, actor=operator())

    run(work)
    out.print(f"discarded {import_id}")


@sync_app.command("status")
def sync_status(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """Last upload, last pickup and its result, held pickups; warns when the export stopped."""
    from rich.table import Table

    from roster.jobs import pickup as pickups

    async def work(engine: AsyncEngine) -> pickups.Status:
        return await pickups.status(engine, tenant)

    found = run(work)
    box, last = found.box, found.last
    data = {
        "enabled": box.enabled,
        "last_upload_at": box.last_upload_at.isoformat() if box.last_upload_at else None,
        "last_pickup_at": box.last_pickup_at.isoformat() if box.last_pickup_at else None,
        "last_result": (
            {"import_id": str(last.id), "status": last.status, "counts": last.counts}
            if last
            else None
        ),
        "next_daily_pickup": box.next_daily_at.isoformat(),
        "held": [{"import_id": str(h.id), "at": h.created_at.isoformat()} for h in found.held],
        "warnings": found.warnings,
    }
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, box=None)
    for name in ("last_upload_at", "last_pickup_at", "next_daily_pickup"):
        table.add_row(name.replace("_", " "), str(data[name] or "never"))
    if last:
        table.add_row("last result", f"{last.status} (import {last.id}) {last.counts}")
    for h in found.held:
        table.add_row("held", f"{h.id} since {h.created_at:%Y-%m-%d %H:%M} UTC")
    out.print(table)
    for warning in found.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
