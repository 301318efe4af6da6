"""The audit log: every change to the organization's users, newest first, filtered and paged,
and as a CSV file with the same filters."""

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from roster.jobs import exports
from roster.store import audit
from roster.web.console.common import LABELS, Admin, page, to_page, zone_of
from roster.web.console.downloads import csv_stream

router = APIRouter()


def filter_day(text: str, label: str, problems: list[str]) -> date | None:
    """A date from a filter field; a wrong one is reported, naming the field, and ignored."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        problems.append(f"{label}: '{text}' is not a date; use YYYY-MM-DD, e.g. 2024-05-31")
        return None


def check_days(since: date | None, until: date | None, problems: list[str]) -> None:
    if since and until and since > until:
        problems.append("To: the end date is before the start date")


User = Annotated[str, Query(max_length=200)]
Actor = Annotated[str, Query(max_length=200)]
Since = Annotated[str, Query(alias="from", max_length=20)]
Until = Annotated[str, Query(alias="to", max_length=20)]


def _filter(
    user: str, channel: str, actor: str, since: str, until: str, page_number: int = 1
) -> tuple[audit.Filter, list[str]]:
    """The filter the page's fields ask for, and what is wrong with them (left out of it)."""
    problems: list[str] = []
    if channel and channel not in audit.CHANNELS:
        problems.append(f"Channel: '{channel}' is not one of {', '.join(audit.CHANNELS)}")
    wanted = audit.Filter(
        user=user, channel=channel if channel in audit.CHANNELS else None, actor=actor,
        since=filter_day(since, "From", problems), until=filter_day(until, "To", problems),
        page=page_number,
    )  # fmt: skip
    check_days(wanted.since, wanted.until, problems)
    return wanted, problems


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    console: Admin,
    user: User = "",
    channel: str = "",
    actor: Actor = "",
    since: Since = "",
    until: Until = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    wanted, problems = _filter(user, channel, actor, since, until, page_number)
    async with console.engine.connect() as conn:
        events, older = await audit.search(conn, console.tenant.id, wanted, zone_of(console))
        if not events and wanted.page > 1:
            last = await audit.last_page(conn, console.tenant.id, wanted, zone_of(console))
            return to_page(request, last)
    form = {"user": user, "channel": channel, "actor": actor, "from": since, "to": until}
    return page(
        request, "audit/list.html", console, status_code=400 if problems else 200,
        error="; ".join(problems) + "." if problems else None, events=events, older=older,
        wanted=wanted, channels=audit.CHANNELS, params=dict(request.query_params), labels=LABELS,
        form=form, download=urlencode({k: v for k, v in form.items() if v}),
    )  # fmt: skip


@router.get("/audit.csv")
async def audit_file(
    console: Admin,
    user: User = "",
    channel: str = "",
    actor: Actor = "",
    since: Since = "",
    until: Until = "",
) -> Response:
    """The events the Audit log page shows with the same filters, every page of them, as CSV.
    A filter the page would refuse is refused here too (400), naming what is wrong."""
    wanted, problems = _filter(user, channel, actor, since, until)
    if problems:
        return PlainTextResponse("; ".join(problems) + ".", status_code=400)
    chunks = exports.audit_file(console.engine, console.tenant.id, wanted, zone_of(console), LABELS)
    return await csv_stream(chunks, exports.AUDIT_FILE_NAME)
