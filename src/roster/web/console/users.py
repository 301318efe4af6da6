"""The users: the list with search, filters, sort and pages."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from roster.store import user_search
from roster.web.console.common import Admin, page

router = APIRouter()
CHANNELS = ("cli", "csv", "sftp", "scim", "console")


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@router.get("/users", response_class=HTMLResponse)
async def user_list(
    request: Request,
    console: Admin,
    q: str = "",
    active: str | None = None,
    first_aider: str | None = None,
    emergency_responder: str | None = None,
    channel: str | None = None,
    sort: Annotated[str, Query(pattern="^-?(username|name|email|department)$")] = "username",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    done: str | None = None,
) -> HTMLResponse:
    query = user_search.Query(
        text=q[:200],
        active=_flag(active),
        first_aider=_flag(first_aider),
        emergency_responder=_flag(emergency_responder),
        channel=channel if channel in CHANNELS else None,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        page=page_number,
    )
    async with console.engine.connect() as conn:
        rows, total = await user_search.search(conn, console.tenant.id, query)
    pages = max(1, -(-total // user_search.PER_PAGE))
    return page(
        request,
        "users/list.html",
        console,
        rows=rows,
        total=total,
        query=query,
        sort=sort,
        pages=pages,
        channels=CHANNELS,
        params=dict(request.query_params),
        done=done,
    )
