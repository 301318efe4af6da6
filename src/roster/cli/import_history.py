"""`roster imports`: the import history, and undo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from roster.cli.common import JsonOption, TenantOption, err, operator, out, print_json, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

imports_app = typer.Typer(help="Import history and undo.", no_args_is_help=True)


@imports_app.command("list")
def imports_list(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The organization's import history, newest first."""
    from rich.table import Table

    from roster.store import imports, tenants

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
    from roster.jobs import imports as import_jobs
    from roster.settings import get_settings

    async def work(engine: AsyncEngine) -> import_jobs.ImportReport:
        return await import_jobs.undo(
            engine, import_id, channel="cli", actor=operator(),
            max_problems=get_settings().max_reported_problems,
        )  # fmt: skip

    report = run(work, as_json)
    if as_json:
        print_json(report.as_json())
    elif report.status == import_jobs.NotRecorded.BLOCKED:
        err.print("[red]cannot undo:[/] these users block it:")
        for issue in report.issues:
            err.print(f"  {issue.message}", markup=False)
        if left_out := report.problems.left_out():
            err.print(f"  {left_out}", markup=False)
    else:
        out.print(f"undone: {report.counts}")
    raise typer.Exit(0 if report.ok else 1)
