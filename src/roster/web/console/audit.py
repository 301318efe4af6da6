"""The audit log: every change to the organization's users, newest first, filtered and paged,
and as a CSV file with the same filters."""

from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
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


@dataclass(frozen=True)
class Asked:
    """The filter fields as the page's form sends them (the download's link carries them too)."""

    user: Annotated[str, Query(max_length=200)] = ""
    channel: str = ""
    actor: Annotated[str, Query(max_length=200)] = ""
    since: Annotated[str, Query(alias="from", max_length=20)] = ""
    until: Annotated[str, Query(alias="to", max_length=20)] = ""

    @property
    def form(self) -> dict[str, str]:
        """The fields by their names in the form (and the address)."""
        return {"user": self.user, "channel": self.channel, "actor": self.actor,
                "from": self.since, "to": self.until}  # fmt: skip

    def wanted(self, page_number: int = 1) -> tuple[audit.Filter, list[str]]:
        """The filter the fields ask for, and what is wrong with them (left out of it)."""
        problems: list[str] = []
        channel = self.channel
        if channel and channel not in audit.CHANNELS:
            problems.append(f"Channel: '{channel}' is not one of {', '.join(audit.CHANNELS)}")
        wanted = audit.Filter(
            user=self.user, channel=channel if channel in audit.CHANNELS else None,
            actor=self.actor, since=filter_day(self.since, "From", problems),
            until=filter_day(self.until, "To", problems), page=page_number,
        )  # fmt: skip
        check_days(wanted.since, wanted.until, problems)
        return wanted, problems


Fields = Annotated[Asked, Depends()]


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    console: Admin,
    asked: Fields,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    wanted, problems = asked.wanted(page_number)
    async with console.engine.connect() as conn:
        events, older = await audit.search(conn, console.tenant.id, wanted, zone_of(console))
        if not events and wanted.page > 1:
            last = await audit.last_page(conn, console.tenant.id, wanted, zone_of(console))
            return to_page(request, last)
    return page(
        request, "audit/list.html", console, status_code=400 if problems else 200,
        error="; ".join(problems) + "." if problems else None, events=events, older=older,
        wanted=wanted, channels=audit.CHANNELS, params=dict(request.query_params), labels=LABELS,
        form=asked.form, download=urlencode({k: v for k, v in asked.form.items() if v}),
    )  # fmt: skip


@router.get("/audit.csv")
async def audit_file(console: Admin, asked: Fields) -> Response:
    """The events the Audit log page shows with the same filters, every page of them, as CSV.
    A filter the page would refuse is refused here too (400), naming what is wrong."""
    wanted, problems = asked.wanted()
    if problems:
        return PlainTextResponse("; ".join(problems) + ".", status_code=400)
    chunks = exports.audit_file(console.engine, console.tenant.id, wanted, zone_of(console), LABELS)
    return await csv_stream(chunks, exports.AUDIT_FILE_NAME)
