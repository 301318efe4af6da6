"""`roster scim log`: the organization's provisioning log, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from roster.cli.common import JsonOption, TenantOption, fail, out, print_json, run

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from roster.store.provisioning_log import Entry


def scim_log(
    tenant: TenantOption,
    as_json: JsonOption = False,
    last: Annotated[
        int, typer.Option("--last", min=1, max=10_000, help="How many requests, newest first.")
    ] = 50,
    status: Annotated[
        str, typer.Option("--status", help="Only these answers: 2xx, 4xx, 5xx or a code.")
    ] = "",
) -> None:
    """What the organization's SCIM clients asked and what Roster did (times in UTC)."""
    from rich.table import Table

    from roster.domain.schedule import zone
    from roster.store import provisioning_log, tenants

    if problem := provisioning_log.status_problem(status):
        fail(2, "refused", f"--status: {problem}", as_json)
    wanted = provisioning_log.Filter(status=status)

    async def work(engine: AsyncEngine) -> list[provisioning_log.Entry]:
        async with engine.connect() as conn:
            tenant_id = (await tenants.get(conn, tenant)).id
            found, _ = await provisioning_log.search(conn, tenant_id, wanted, zone("UTC"), last)
        return found

    found = run(work, as_json)
    if as_json:
        print_json([_json(e) for e in found])
        return
    table = Table("at (UTC)", "token", "request", "status", "user", "what happened", "ms")
    for e in found:
        detail = "; ".join([e.detail, *e.warnings])
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"), e.token, f"{e.method} {e.path}", str(e.status),
            e.user_name or "", detail, f"{e.duration_ms:.0f}",
        )  # fmt: skip
    out.print(table)


def _json(e: Entry) -> dict[str, object]:
    return {
        "at": e.at.isoformat(), "token": e.token, "method": e.method, "path": e.path,
        "status": e.status, "user_name": e.user_name, "resource_id": e.resource_id,
        "detail": e.detail, "warnings": e.warnings, "duration_ms": round(e.duration_ms, 1),
        "id": str(e.id),
    }  # fmt: skip
