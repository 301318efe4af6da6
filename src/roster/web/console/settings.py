"""The organization's settings: its name, time zone, retention, deletion guard and the notices
its admins are mailed, on one form saved whole or not at all, each refusal shown under its
field with what was typed."""

from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from roster.domain.notices import KINDS
from roster.domain.plan import Guard
from roster.store import tenants
from roster.store.db import writing
from roster.web.console.common import Admin, Console, Writing, back_to, checked_fields, page

router = APIRouter()
HERE = "/settings"


@cache
def _zones() -> list[str]:
    return sorted(available_timezones())


def _show(
    request: Request,
    console: Console,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    t = console.tenant
    shown = form or {
        "name": t.name, "timezone": t.timezone, "retention_days": str(t.retention_days),
        "guard_percent": str(t.guard.percent), "guard_min_users": str(t.guard.min_users),
        **{f"notice_{kind}": kind not in t.notices_off for kind in KINDS},
    }  # fmt: skip
    return page(
        request, "settings.html", console, status_code=400 if errors else 200,
        error="The settings are not saved: see the fields marked below." if errors else None,
        form=shown, errors=errors or {}, zones=_zones(), kinds=KINDS,
    )  # fmt: skip


@router.get(HERE, response_class=HTMLResponse)
async def settings_page(request: Request, console: Admin) -> Response:
    return _show(request, console)


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise tenants.TenantError(f"'{text}' is not a whole number") from None


@router.post(HERE, response_class=HTMLResponse)
async def save_settings(
    request: Request,
    console: Writing,
    name: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
    retention_days: Annotated[str, Form()] = "",
    guard_percent: Annotated[str, Form()] = "",
    guard_min_users: Annotated[str, Form()] = "",
) -> Response:
    sent = await request.form()  # the notices' checkboxes: a kind unticked is not sent
    notices_on = {kind: bool(sent.get(f"notice_{kind}")) for kind in KINDS}
    form: dict[str, Any] = {
        "name": name, "timezone": timezone, "retention_days": retention_days,
        "guard_percent": guard_percent, "guard_min_users": guard_min_users,
        **{f"notice_{kind}": on for kind, on in notices_on.items()},
    }  # fmt: skip
    values, errors = checked_fields(
        (
            ("name", lambda: tenants.check_name(name)),
            ("timezone", lambda: tenants.check_timezone(timezone)),
            ("retention_days", lambda: tenants.check_retention(_whole(retention_days))),
            ("guard_percent", lambda: tenants.check_guard_percent(_whole(guard_percent))),
            ("guard_min_users", lambda: tenants.check_guard_min_users(_whole(guard_min_users))),
        ),
        (tenants.TenantError,),
    )
    if errors:
        return _show(request, console, form, errors)
    guard = Guard(values.pop("guard_percent"), values.pop("guard_min_users"))
    async with writing(console.engine) as conn:
        await tenants.configure(
            conn, console.tenant.id, guard=guard,
            notices_off=[kind for kind, on in notices_on.items() if not on], **values,
        )  # fmt: skip
    return back_to(HERE, "The settings are saved.", console)
