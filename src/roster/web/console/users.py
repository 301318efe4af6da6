"""The users: the list with search, filters, sort and pages, and its download (the user list as
the template's file); one user's page with their history and sessions; adding, editing,
deactivating and removing users; admin rights; sign-outs. Every write goes through jobs/people
(the directory's one apply step); SCIM's users are read-only."""

import asyncio
import secrets
from collections.abc import Awaitable
from typing import Annotated, Any, TypedDict
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from roster.domain.fields import FIELDS, Field, Kind
from roster.domain.issues import Issue
from roster.domain.passwords import hash_password
from roster.domain.user_list import FILE_NAME as USER_LIST_NAME
from roster.jobs import exports, people
from roster.store import sessions, user_pages, user_search
from roster.store.db import writing
from roster.web.console.common import (
    LABELS,
    Admin,
    Console,
    Writing,
    back_to,
    local_time,
    page,
    to_page,
    zone_of,
)
from roster.web.console.downloads import csv_stream

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
) -> Response:
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
    if page_number > pages:
        return to_page(request, pages)
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
    )


@router.get("/users.csv")
async def user_file(console: Admin) -> Response:
    """Download the user list: the template's file of the organization's users (those a file
    manages), which a replace reads back without a change."""
    chunks = exports.user_file(console.engine, console.tenant.id)
    return await csv_stream(chunks, USER_LIST_NAME)


# -- one user -----------------------------------------------------------------------------------

SCIM_OWNS = (
    "SCIM (your identity provider) manages this user: change or remove them there, and the "
    "change reaches Roster by itself."
)
KINDS = {
    Kind.TEXT: "text",
    Kind.USERNAME: "text, no spaces",
    Kind.PHONE: "digits and + - ( ) . / space",
    Kind.EMAIL: "an e-mail address",
    Kind.FLAG: "yes or no",
    Kind.PHOTO: "an http(s) link or an image file name",
}


def _rule(spec: Field) -> str:
    """The template's rule for a field, as the form shows it beside the input."""
    parts = ["Required" if spec.required else "Optional"]
    if spec.kind is not Kind.FLAG:
        span = f"{spec.min_len}–{spec.max_len}" if spec.max_len else f"at least {spec.min_len}"
        parts.append(f"{span} characters")
    parts.append(KINDS[spec.kind])
    if spec.kind is not Kind.FLAG:
        parts.append(f"e.g. {spec.example}")
    return " · ".join(parts)


RULES = {f.name: _rule(f) for f in FIELDS}


def _shown(value: Any) -> str:
    if value is None or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _changes(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """An audit event's changed attributes as (label, before, after), unchanged ones left out."""
    before, after = event["before"] or {}, event["after"] or {}
    rows = []
    for name in [*before, *(n for n in after if n not in before)]:
        old, new = _shown(before.get(name)), _shown(after.get(name))
        if old != new:
            rows.append((LABELS.get(name, name), old, new))
    return rows


def _id(text: str) -> UUID:
    """A user id from the path; anything else is a page that does not exist."""
    try:
        return UUID(text)
    except ValueError:
        raise HTTPException(404) from None


async def _user(console: Console, user_id: str) -> dict[str, Any]:
    """A present user of the signed-in admin's organization, or 404 (never another's)."""
    async with console.engine.connect() as conn:
        found = await user_pages.user(conn, console.tenant.id, _id(user_id))
    if found is None:
        raise HTTPException(404)
    return found


async def _editable(console: Console, user_id: str) -> dict[str, Any]:
    user = await _user(console, user_id)
    if user["managed_by"] == "scim":
        raise HTTPException(403, SCIM_OWNS)
    return user


async def _user_page(
    request: Request,
    console: Console,
    user_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    user = await _user(console, user_id)
    async with console.engine.connect() as conn:
        trail = await user_pages.trail(conn, console.tenant.id, user["id"])
        open_sessions = await sessions.active(conn, console.tenant.id, user["id"])
    return page(
        request, "users/user.html", console, status_code, user=user, fields=FIELDS,
        shown=_shown, trail=[(e, _changes(e)) for e in trail], sessions=open_sessions,
        scim=user["managed_by"] == "scim", scim_owns=SCIM_OWNS, trail_limit=user_pages.TRAIL,
        error=error,
    )  # fmt: skip


def _form(
    request: Request,
    console: Console,
    user: dict[str, Any] | None,
    values: dict[str, str],
    issues: list[Issue] = (),  # type: ignore[assignment]
    *,
    version: int | None = None,
    changed: list[str] | None = None,
) -> HTMLResponse:
    """The add or edit form; `version` is the user's version it edits (saved only while still
    the stored one), `changed` what changed since the version the admin's edit was made from."""
    errors: dict[str, str] = {}
    for issue in issues:
        errors.setdefault(issue.column or "", issue.message)
    status = 409 if changed is not None else 400 if errors else 200
    return page(
        request, "users/form.html", console, status, user=user, fields=FIELDS,
        rules=RULES, values=values, errors=errors, version=version, changed=changed,
    )  # fmt: skip


async def _posted(request: Request) -> dict[str, str]:
    form = await request.form()
    return {f.name: str(form.get(f.name) or "") for f in FIELDS}


def _as_form(user: dict[str, Any]) -> dict[str, str]:
    """Stored values as the form's inputs hold them (flags as 1 or 0, no value as empty)."""
    return {
        f.name: "" if user[f.name] is None else ("1" if user[f.name] else "0")
        if f.kind is Kind.FLAG else str(user[f.name])
        for f in FIELDS
    }  # fmt: skip


@router.get("/users/new", response_class=HTMLResponse)
async def new_user_form(request: Request, console: Admin) -> HTMLResponse:
    return _form(request, console, None, {f.name: "" for f in FIELDS})


@router.post("/users/new", response_class=HTMLResponse)
async def add_user(request: Request, console: Writing) -> Response:
    raw = await _posted(request)
    outcome = await people.add(console.engine, console.tenant.id, raw, **_by(console))
    if not outcome.ok or outcome.user_id is None:
        return _form(request, console, None, raw, outcome.issues)
    return back_to(f"/users/{outcome.user_id}", f"{raw['username'].strip()} is added.", console)


@router.get("/users/sign-out-everyone", response_class=HTMLResponse)
async def sign_out_everyone_page(request: Request, console: Admin) -> HTMLResponse:
    return page(request, "users/sign_out_everyone.html", console)


@router.post("/users/sign-out-everyone")
async def sign_out_everyone(console: Writing) -> Response:
    async with writing(console.engine) as conn:
        count = await user_pages.sign_out_everyone(conn, console.tenant.id, console.actor)
    ended = "1 app session was" if count == 1 else f"{count:,} app sessions were"
    return back_to("/users", f"Everyone is signed out of the app: {ended} ended.", console)


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_page(request: Request, console: Admin, user_id: str) -> HTMLResponse:
    return await _user_page(request, console, user_id)


@router.get("/users/{user_id}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, console: Admin, user_id: str) -> HTMLResponse:
    user = await _editable(console, user_id)
    return _form(request, console, user, _as_form(user), version=user["version"])


class _By(TypedDict):
    channel: str
    actor: str


def _by(console: Console) -> _By:
    """Who writes, for the audit trail: this console's admin."""
    return {"channel": "console", "actor": console.actor}


async def _attempt(work: Awaitable[people.Outcome]) -> people.Outcome:
    """A write of jobs/people; a user removed meanwhile is a page that no longer exists."""
    try:
        return await work
    except people.NoSuchUser:
        raise HTTPException(404) from None


async def _then(
    request: Request, console: Console, outcome: people.Outcome, next: Response
) -> Response:
    """Where a write leads, or its refusal (the last admin) shown on the user's page."""
    if outcome.ok:
        return next
    assert outcome.user_id is not None
    message = outcome.issues[0].message
    return await _user_page(request, console, str(outcome.user_id), error=message, status_code=409)


async def _change(
    request: Request, console: Console, user_id: UUID, values: dict[str, Any], done: str
) -> Response:
    outcome = await _attempt(
        people.change(console.engine, console.tenant.id, user_id, values, **_by(console))
    )
    return await _then(request, console, outcome, back_to(f"/users/{user_id}", done, console))


CHANNEL_WORDS = {
    "csv": "CSV import",
    "sftp": "SFTP pickup",
    "scim": "SCIM",
    "console": "Control Centre",
    "cli": "command line",
}


def _version(text: Any) -> int:
    """The version an edit form carries; a form without one is not this console's."""
    if not isinstance(text, str) or not text.isdecimal() or len(text) > 18:
        raise HTTPException(400, "The form is incomplete: reload the page and edit again.")
    return int(text)


def _changed_since(events: list[dict[str, Any]], tz: ZoneInfo) -> list[str]:
    """Each attribute the events changed, from its value before the first of them to its value
    now, with the channel, who and when of the last one."""
    seen: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for event in events:  # oldest first
        for label, before, after in _changes(event):
            seen[label] = (seen[label][0] if label in seen else before, after, event)
    return [
        f"{label} changed from {before} to {after} ({CHANNEL_WORDS.get(e['channel'], e['channel'])}"
        f" by {e['actor']}, {local_time(e['at'], tz)})"
        for label, (before, after, e) in seen.items()
        if before != after
    ]


async def _stale_form(
    request: Request, console: Console, user_id: UUID, raw: dict[str, str], seen: int
) -> HTMLResponse:
    """The edit form refused (409): what the admin typed, what changed since `seen`, and the
    stored version, so that saving again is a choice made knowing both."""
    user = await _editable(console, str(user_id))
    async with console.engine.connect() as conn:
        events = await user_pages.changes_since(conn, console.tenant.id, user_id, seen)
    changed = _changed_since(events, zone_of(console)) or [people.CHANGED]
    return _form(request, console, user, raw, version=user["version"], changed=changed)


@router.post("/users/{user_id}/edit", response_class=HTMLResponse)
async def edit(request: Request, console: Writing, user_id: str) -> Response:
    user = await _editable(console, user_id)
    raw = await _posted(request)
    seen = _version((await request.form()).get("version"))
    values, issues = people.validate(raw)
    if not issues:
        outcome = await _attempt(
            people.change(
                console.engine, console.tenant.id, user["id"], values, version=seen,
                **_by(console),
            )
        )  # fmt: skip
        if [issue.code for issue in outcome.issues] == ["changed"]:
            return await _stale_form(request, console, user["id"], raw, seen)
        issues = outcome.issues
    if issues:
        return _form(request, console, user, raw, issues, version=seen)
    return back_to(f"/users/{user['id']}", "Your changes are saved.", console)


@router.post("/users/{user_id}/deactivate", response_class=HTMLResponse)
async def deactivate(request: Request, console: Writing, user_id: str) -> Response:
    user = await _editable(console, user_id)
    done = f"{user['username']} is deactivated and signed out of the app."
    return await _change(request, console, user["id"], {"active": False}, done)


@router.post("/users/{user_id}/reactivate", response_class=HTMLResponse)
async def reactivate(request: Request, console: Writing, user_id: str) -> Response:
    user = await _editable(console, user_id)
    done = f"{user['username']} is active again."
    return await _change(request, console, user["id"], {"active": True}, done)


@router.get("/users/{user_id}/remove", response_class=HTMLResponse)
async def remove_page(request: Request, console: Admin, user_id: str) -> HTMLResponse:
    user = await _editable(console, user_id)
    return page(request, "users/remove.html", console, user=user)


@router.post("/users/{user_id}/remove", response_class=HTMLResponse)
async def remove(request: Request, console: Writing, user_id: str) -> Response:
    user = await _editable(console, user_id)
    outcome = await _attempt(
        people.remove(console.engine, console.tenant.id, user["id"], **_by(console))
    )
    return await _then(
        request,
        console,
        outcome,
        back_to("/users", f"{user['username']} is removed and signed out of the app.", console),
    )


async def _set_role(
    request: Request, console: Console, user_id: UUID, password_hash: str | None, next: Response
) -> Response:
    work = people.set_role(
        console.engine, console.tenant.id, user_id, password_hash, **_by(console)
    )
    return await _then(request, console, await _attempt(work), next)


@router.post("/users/{user_id}/admin", response_class=HTMLResponse)
async def make_admin(request: Request, console: Writing, user_id: str) -> Response:
    """Role admin and a one-time password, shown once here for the acting admin to hand over."""
    user = await _user(console, user_id)  # SCIM does not manage roles: allowed for its users too
    password = secrets.token_urlsafe(18)
    hashed = await asyncio.to_thread(hash_password, password)
    shown = page(request, "users/admin_made.html", console, user=user, password=password)
    return await _set_role(request, console, user["id"], hashed, shown)


@router.post("/users/{user_id}/admin/remove", response_class=HTMLResponse)
async def remove_admin(request: Request, console: Writing, user_id: str) -> Response:
    user = await _user(console, user_id)
    done = back_to(f"/users/{user['id']}", f"{user['username']} is no longer an admin.", console)
    return await _set_role(request, console, user["id"], None, done)


@router.post("/users/{user_id}/sign-out")
async def sign_out_user(console: Writing, user_id: str) -> Response:
    user = await _user(console, user_id)  # SCIM users too: sessions are Roster's own
    async with writing(console.engine) as conn:
        count = await user_pages.sign_out(conn, console.tenant.id, user["id"], console.actor)
    ended = "1 session" if count == 1 else f"{count} sessions"
    return back_to(
        f"/users/{user['id']}", f"{user['username']} is signed out everywhere ({ended}).", console
    )
