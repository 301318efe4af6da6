"""`roster import`, `roster template` and `roster users` (list, export): the directory's users."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from roster.cli.common import JsonOption, TenantOption, operator, out, print_json, run
from roster.domain.mode import Mode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from roster.jobs.imports import ImportReport

users_app = typer.Typer(help="The directory's users.", no_args_is_help=True)

PRINTED = 50  # errors, and warnings, an import prints without --json


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
    from roster import collector

    # The modules it loads and the import's objects form no cycles worth the collector's
    # passes; the report is gone when it runs again.
    with collector.paused():
        ok = _import_file(file, tenant, mode, dry_run, partial, force, as_json, quiet)
    raise typer.Exit(0 if ok else 1)


def _import_file(
    file: Path,
    tenant: str,
    mode: Mode,
    dry_run: bool,
    partial: bool,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> bool:
    """Import the file and print its report; whether it went well."""
    from roster.cli.common import progress_output
    from roster.domain import csvfile
    from roster.jobs import imports as import_jobs
    from roster.settings import get_settings

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

        async def work(engine: AsyncEngine) -> import_jobs.ImportReport:
            with progress_output(not quiet) as show, file.open("rb") as source:
                return await import_jobs.run_import(
                    engine,
                    tenant,
                    source,  # read a block at a time: a large file is never whole in memory
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
    return report.ok


def _print_report(report: ImportReport) -> None:
    from roster.jobs import imports as import_jobs

    colour = "green" if report.ok else "red"
    out.print(f"[bold {colour}]{report.status}[/]", end="")
    if report.import_id:
        out.print(f"  import {report.import_id}", end="")
    out.print()
    if report.counts:
        out.print("  ".join(f"{name}: {count}" for name, count in report.counts.items()))
    if report.held:
        out.print(f"[yellow]held:[/] {report.held}. Re-run with --force to apply it.")
    if report.status == import_jobs.NotRecorded.DRY_RUN and report.plan is not None:
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
    from rich.table import Table

    from roster.domain.fields import FIELD_NAMES
    from roster.store import directory_reads, tenants

    async def work(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
            return await directory_reads.list_users(conn, found.id)

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


@users_app.command("export")
def users_export(
    tenant: TenantOption,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write to this file, not stdout."),
    ] = None,
) -> None:
    """Write the user list as the template's CSV file (UTF-8 with BOM): every present user a
    file manages (not SCIM's). A replace with the file unchanged changes nothing."""
    import os
    import tempfile
    from contextlib import aclosing

    from roster.jobs import exports
    from roster.store import tenants

    async def work(engine: AsyncEngine, sink: IO[bytes]) -> None:
        async with engine.connect() as conn:
            found = await tenants.get(conn, tenant)
        async with aclosing(exports.user_file(engine, found.id)) as chunks:
            async for chunk in chunks:  # written as read: the list is never whole in memory
                sink.write(chunk)

    if output is None:
        run(lambda engine: work(engine, sys.stdout.buffer))
        sys.stdout.buffer.flush()
        return
    # Into a new file beside the target (0600: it holds people's data), renamed over it once
    # whole: a failed export never leaves half a list where a script expects one.
    folder = output.resolve().parent
    with tempfile.NamedTemporaryFile("wb", dir=folder, prefix=".roster-", delete=False) as sink:
        try:
            run(lambda engine: work(engine, sink))
            sink.flush()
            os.fsync(sink.fileno())
        except BaseException:
            os.unlink(sink.name)
            raise
    os.replace(sink.name, output)


def template() -> None:
    """Print the CSV template: the header and an example row."""
    from roster.domain import csvfile

    sys.stdout.buffer.write(csvfile.template().encode())  # bytes: keep the CRLF line ends
