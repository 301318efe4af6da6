"""The provisioning log under Integrations: what the organization's SCIM clients asked and what
Roster did, newest first, filtered by status, user and day, and one request on its own page."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from roster.store import provisioning_log
from roster.web.console.audit import check_days, filter_day
from roster.web.console.common import Admin, page, to_page, zone_of
from roster.web.console.integrations import HERE

router = APIRouter()
LOG = f"{HERE}/scim-log"


@router.get(LOG, response_class=HTMLResponse)
async def scim_log(
    request: Request,
    console: Admin,
    status: Annotated[str, Query(max_length=20)] = "",
    user: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(alias="from", max_length=20)] = "",
    until: Annotated[str, Query(alias="to", max_length=20)] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    problems: list[str] = []
    if problem := provisioning_log.status_problem(status):
        problems.append(f"Status: {problem}")
    wanted = provisioning_log.Filter(
        status="" if problem else status, user=user, since=filter_day(since, "From", problems),
        until=filter_day(until, "To", problems), page=page_number,
    )  # fmt: skip
    check_days(wanted.since, wanted.until, problems)
    async with console.engine.connect() as conn:
        found, older = await provisioning_log.search(
            conn, console.tenant.id, wanted, zone_of(console)
        )
        if not found and wanted.page > 1:
            last = await provisioning_log.last_page(
                conn, console.tenant.id, wanted, zone_of(console)
            )
            return to_page(request, last)
    return page(
        request, "integrations/scim_log.html", console, status_code=400 if problems else 200,
        error="; ".join(problems) + "." if problems else None, entries=found, older=older,
        wanted=wanted, params=dict(request.query_params),
        form={"status": status, "user": user, "from": since, "to": until},
    )  # fmt: skip


@router.get(f"{LOG}/{{entry_id}}", response_class=HTMLResponse)
async def scim_log_entry(
    request: Request, console: Admin, entry_id: Annotated[int, Path(ge=0, lt=2**63)]
) -> HTMLResponse:
    async with console.engine.connect() as conn:
        entry = await provisioning_log.find(conn, console.tenant.id, entry_id)
    if entry is None:  # another organization's entry is as absent as one that never was
        raise HTTPException(404)
    return page(request, "integrations/scim_log_entry.html", console, entry=entry)
