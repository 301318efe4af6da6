"""What every console page shares: templates, the signed-in admin, CSRF, and redirects."""

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain.fields import FIELD_NAMES, FIELDS
from roster.domain.schedule import ScheduleError, zone
from roster.logs import ORGANIZATION
from roster.settings import Settings
from roster.store import admins, sessions, tenants

COOKIE = "roster_console"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _urlencode_with(params: dict[str, str], **changes: object) -> str:
    """The current query string with some parameters changed (sort links, pages)."""
    return urlencode({**params, **{k: str(v) for k, v in changes.items()}})


templates.env.filters["urlencode_with"] = _urlencode_with


class SignInRequired(Exception):
    """No live console session: the handler sends the browser to the sign-in page."""


class NotAnAdmin(Exception):
    """Signed in, but not (or no longer) an admin: a polite refusal."""


class CsrfFailed(Exception):
    """A form without this session's token: not sent by our page (or the page is stale)."""


# What the console calls each attribute of a user (the template's fields in its order first).
LABELS = {f.name: f.label for f in FIELDS} | {
    "active": "Active",
    "role": "Role",
    "external_id": "External id",
    "extra": "Extra attributes",
    "sessions": "Sessions ended",
    "two_step": "Two-step sign-in",
}
FIELD_LABELS = {name: LABELS[name] for name in FIELD_NAMES}  # the template's fields alone


@dataclass(frozen=True)
class Console:
    """The signed-in admin, their organization, and what a page needs to write safely."""

    engine: AsyncEngine
    settings: Settings
    tenant: tenants.Tenant
    admin: admins.Admin
    session: sessions.Session
    csrf: str

    @property
    def actor(self) -> str:
        """Who made a change, in the audit trail."""
        return self.admin.email


def zone_of(console: Console | None) -> ZoneInfo:
    """The organization's time zone: every time a page shows, and every day a filter names,
    counts in it (UTC on a page of no session)."""
    try:
        return zone(console.tenant.timezone if console else "UTC")
    except ScheduleError:
        return zone("UTC")


def local_time(at: datetime | None, tz: ZoneInfo, seconds: bool = False) -> str:
    """A stored (UTC) time as the organization reads it, its zone named: 2026-11-30 10:42 CET."""
    if at is None:
        return "never"
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


@pass_context
def _when(context: Any, at: datetime | None, seconds: bool = False) -> str:
    return local_time(at, zone_of(context.get("console")), seconds)


templates.env.globals["when"] = _when


def csrf_token(cookie: str) -> str:
    """Bound to the session: a page of one session cannot be replayed by another."""
    return hmac.new(cookie.encode(), b"roster console csrf", hashlib.sha256).hexdigest()


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def signed_in(request: Request) -> Console:
    cookie = request.cookies.get(COOKIE, "")
    engine = engine_of(request)
    async with engine.connect() as conn:
        session = await sessions.find(conn, cookie, "console")
        if session is None:
            raise SignInRequired()
        admin = await admins.get(conn, session.tenant_id, session.user_id)
        tenant = await tenants.by_id(conn, session.tenant_id)
    if admin is None or not admin.is_admin:
        raise NotAnAdmin()
    ORGANIZATION.set(str(tenant.id))  # for what this request logs
    return Console(engine, request.app.state.settings, tenant, admin, session, csrf_token(cookie))


async def writes(request: Request, console: Annotated[Console, Depends(signed_in)]) -> Console:
    """A form that changes something: it must carry the session's CSRF token."""
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, console.csrf):
        raise CsrfFailed()
    return console


Admin = Annotated[Console, Depends(signed_in)]
Writing = Annotated[Console, Depends(writes)]


def page(
    request: Request,
    template: str,
    console: Console | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page of the console, with the message of the form just sent (see `back_to`)."""
    return templates.TemplateResponse(
        request,
        template,
        {"console": console, "done": _done(request, console), **context},
        status_code=status_code,
    )


def back_to(
    path: str, message: str | None = None, console: Console | None = None
) -> RedirectResponse:
    """After a form: the page to show next (303, so a reload does not post again), and the
    message it shows, sealed for this session: a link anyone else made, or one from before
    signing in again, shows no message."""
    if message:
        if console is None:
            raise ValueError("a message needs the session it is sealed for")
        sealed = urlencode({"done": message, "seal": _seal(console, message)})
        path += ("&" if "?" in path else "?") + sealed
    return RedirectResponse(path, status_code=303)


def checked_fields(
    checks: Iterable[tuple[str, Callable[[], Any]]], refused: tuple[type[Exception], ...]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A form's fields, each checked on its own: the values the checks gave, and for each
    field a check refused the sentence shown under it (every problem at once, not the first)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, check in checks:
        try:
            values[name] = check()
        except refused as error:
            text = str(error)
            errors[name] = f"{text[:1].upper()}{text[1:]}."
    return values, errors


def to_page(request: Request, number: int) -> RedirectResponse:
    """The same list at page `number`: where a page asked for past the end goes."""
    params = urlencode({**request.query_params, "page": str(number)})
    return RedirectResponse(f"{request.url.path}?{params}", status_code=303)


def _seal(console: Console, message: str) -> str:
    return hmac.new(console.csrf.encode(), b"done:" + message.encode(), hashlib.sha256).hexdigest()


def _done(request: Request, console: Console | None) -> str | None:
    message = request.query_params.get("done")
    seal = request.query_params.get("seal", "")
    expected = _seal(console, message).encode() if message and console else b""
    if not expected or not hmac.compare_digest(seal.encode(), expected):
        return None
    return message
