"""Signing in and out of the console: organization, e-mail and password, then a TOTP code
where the admin turned it on; failed attempts lock the account and are limited per address."""

import asyncio
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

import pyotp
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from roster.domain.fields import has_control
from roster.domain.passwords import PasswordError, hash_password, verify
from roster.domain.sso import provider_name
from roster.jobs.sso import provider_of
from roster.store import admins, sessions, tenants
from roster.store.clock import now
from roster.store.db import writing
from roster.throttle import account_key
from roster.web.console.common import (
    COOKIE,
    Admin,
    Writing,
    back_to,
    csrf_token,
    engine_of,
    page,
)

router = APIRouter()
SIGNIN_COOKIE = "roster_signin"  # the sign-in form's own CSRF token (there is no session yet)
SESSION_HOURS = 12
PENDING_MINUTES = 5
WRONG = "That organization, e-mail address and password do not match an admin."


def _set_cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.console_secure_cookies,
        path="/",
    )


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an address elsewhere (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/users"


async def _provider_name(request: Request, organization: str) -> str | None:
    """The name of the organization's OpenID provider, when it has one turned on."""
    if not organization or has_control(organization):
        return None
    found = await provider_of(engine_of(request), organization[:63])
    return provider_name(found[1].issuer) if found else None


async def _signin_form(request: Request, error: str | None = None, **values: str) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    organization = values.get("organization", "")
    response = page(
        request,
        "signin.html",
        None,
        status_code=400 if error else 200,
        error=error,
        form_token=token,
        values=values,
        provider=await _provider_name(request, organization.strip().lower()),
        sso_query=urlencode({"organization": organization, "next": values.get("next", "/users")}),
    )
    _set_cookie(request, response, SIGNIN_COOKIE, token, 3600)
    return response


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(
    request: Request, next: str | None = None, organization: str | None = None
) -> HTMLResponse:
    """The sign-in form; with the organization known (asked for, or remembered from the last
    sign-in), also the link to sign in through its provider."""
    known = organization if organization is not None else request.cookies.get("roster_org", "")
    return await _signin_form(request, next=safe_next(next), organization=known[:63])


async def start(request: Request, admin: admins.Admin, target: str) -> Response:
    pending = admin.totp_secret is not None
    kind, lifetime = (
        ("console-2fa", timedelta(minutes=PENDING_MINUTES))
        if pending
        else ("console", timedelta(hours=SESSION_HOURS))
    )
    async with writing(engine_of(request)) as conn:
        if not pending:  # with two steps, failures are forgiven only after the code
            await admins.succeeded(conn, admin)
        _, token = await sessions.create(conn, admin.tenant_id, admin.user_id, kind, lifetime)
    response = RedirectResponse(
        f"/signin/code?next={target}" if pending else target, status_code=303
    )
    _set_cookie(request, response, COOKIE, token, int(lifetime.total_seconds()))
    return response


@router.post("/signin", response_class=HTMLResponse)
async def signin(
    request: Request,
    organization: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    form_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/users",
) -> Response:
    values = {"organization": organization, "email": email, "next": safe_next(next)}
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(form_token, expected):
        return await _signin_form(request, "The form expired; please sign in again.", **values)
    peer = request.client.host if request.client else "?"
    attempt = (peer, account_key(organization.strip().lower(), email))
    if _throttled(request, *attempt):
        return await _signin_form(
            request, "Too many attempts; wait a minute and try again.", **values
        )
    engine = engine_of(request)
    tenant, admin = None, None
    if not has_control(organization, email):  # else no organization or admin has them
        async with engine.connect() as conn:
            tenant = await tenants.find(conn, organization.strip().lower())
            admin = await admins.by_email(conn, tenant.id, email) if tenant else None
    matched = await asyncio.to_thread(verify, admin.password_hash if admin else None, password)
    if admin is not None and admin.locked(now()):
        if matched:
            return await _signin_form(
                request,
                "This account is locked for a few minutes after too many failed attempts.",
                **values,
            )
        matched = False
    if not matched or admin is None:
        if admin is not None:
            async with writing(engine) as conn:
                await admins.failed(conn, admin)
        return await _signin_form(request, WRONG, **values)
    request.app.state.console_limiter.forgive(*attempt)
    response = await start(request, admin, values["next"])
    if tenant is not None:
        remember_organization(request, response, tenant.slug)
    return response


def remember_organization(request: Request, response: Response, slug: str) -> None:
    """Prefilled next time (and its provider offered); not a secret."""
    _set_cookie(request, response, "roster_org", slug, 365 * 86400)


def _throttled(request: Request, *keys: str) -> bool:
    """Count an attempt before checking it, so parallel guesses cannot all slip in before the
    first failure is counted; a right one is forgiven afterwards."""
    limiter = request.app.state.console_limiter
    if limiter.blocked(*keys):
        return True
    limiter.failed(*keys)
    return False


def _code_step(secret: str, code: str) -> int | None:
    """The time step (of the previous, current or next 30 s) this code belongs to, if any."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.now(UTC))
    entered = code.strip().replace(" ", "")
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), entered):
            return step
    return None


async def _pending(request: Request) -> tuple[sessions.Session, admins.Admin] | None:
    async with engine_of(request).connect() as conn:
        pending = await sessions.find(conn, request.cookies.get(COOKIE, ""), "console-2fa")
        admin = await admins.get(conn, pending.tenant_id, pending.user_id) if pending else None
    return (pending, admin) if pending and admin and admin.totp_secret else None


@router.get("/signin/code", response_class=HTMLResponse)
async def code_page(request: Request, next: str | None = None) -> Response:
    if await _pending(request) is None:
        return RedirectResponse("/signin", status_code=303)
    return page(request, "signin_code.html", None, next=safe_next(next), error=None)


@router.post("/signin/code", response_class=HTMLResponse)
async def code(
    request: Request, code: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/users"
) -> Response:
    found = await _pending(request)
    if found is None:
        return RedirectResponse("/signin", status_code=303)
    pending, admin = found
    assert admin.totp_secret
    attempt = (request.client.host if request.client else "?", f"code:{admin.user_id}")
    step = None
    if not _throttled(request, *attempt) and not admin.locked(now()):
        step = _code_step(admin.totp_secret, code)
    async with writing(engine_of(request)) as conn:
        accepted = step is not None and await admins.used_totp_step(conn, admin, step)
        if not accepted:
            await admins.failed(conn, admin)
    if not accepted:
        return page(
            request, "signin_code.html", None, status_code=400, next=safe_next(next),
            error="That code is not right (or has expired). Try the current one.",
        )  # fmt: skip
    request.app.state.console_limiter.forgive(*attempt)
    async with writing(engine_of(request)) as conn:
        await sessions.revoke(conn, pending.tenant_id, pending.id)
        await admins.succeeded(conn, admin)
        _, token = await sessions.create(
            conn, admin.tenant_id, admin.user_id, "console", timedelta(hours=SESSION_HOURS)
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    _set_cookie(request, response, COOKIE, token, SESSION_HOURS * 3600)
    return response


@router.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """Works for anyone with a session (an admin, or a non-admin shown the refusal)."""
    cookie = request.cookies.get(COOKIE, "")
    if cookie and hmac.compare_digest(csrf, csrf_token(cookie)):
        async with writing(engine_of(request)) as conn:
            for kind in ("console", "console-2fa"):
                found = await sessions.find(conn, cookie, kind)
                if found is not None:
                    await sessions.revoke(conn, found.tenant_id, found.id)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def _account_page(
    request: Request,
    console: Admin,
    *,
    error: str | None = None,
) -> HTMLResponse:
    """The account page. While two-step sign-in is off it shows the key this session offers:
    made and kept by the server on the first visit, the same one until it is confirmed."""
    secret = uri = None
    if console.admin.totp_secret is None:
        async with console.engine.connect() as conn:
            secret = await sessions.offered_totp(conn, console.session)
        if secret is None:
            secret = pyotp.random_base32()
            async with writing(console.engine) as conn:
                await sessions.offer_totp(conn, console.session, secret)
        uri = pyotp.TOTP(secret).provisioning_uri(name=console.admin.email, issuer_name="Roster")
    return page(
        request, "account.html", console, status_code=400 if error else 200,
        new_secret=secret, uri=uri, error=error,
    )  # fmt: skip


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, console: Admin) -> HTMLResponse:
    return await _account_page(request, console)


async def _password_refused(request: Request, console: Admin, given: str, wrong: str) -> str | None:
    """Why the signed-in admin's own password, asked again before a change to how they sign in,
    does not confirm it (`wrong`, or too many tries); None when it does. A session left open (or
    stolen) is not enough, and guesses count against the same limit as sign-ins."""
    attempt = (request.client.host if request.client else "?", f"password:{console.admin.user_id}")
    if _throttled(request, *attempt):
        return "Too many tries; wait a minute and try again."
    if not await asyncio.to_thread(verify, console.admin.password_hash, given):
        return wrong
    request.app.state.console_limiter.forgive(*attempt)
    return None


CODE = re.compile(r"[0-9]{6}")


@router.post("/account/2fa", response_class=HTMLResponse)
async def turn_on_2fa(
    request: Request,
    console: Writing,
    code: Annotated[str, Form()] = "",
    current: Annotated[str, Form()] = "",
) -> Response:
    """Confirm the key this session offered with a code from the app and the password."""
    if "secret" in await request.form():
        error = "Key: Roster uses only the key it showed you, never one sent with the form."
        return await _account_page(request, console, error=error)
    if console.admin.totp_secret is not None:
        error = "Two-step sign-in is on already; turn it off first."
        return await _account_page(request, console, error=error)
    entered = code.strip().replace(" ", "")
    if not CODE.fullmatch(entered):
        error = "Code from the app: enter the 6 digits your authenticator app shows."
        return await _account_page(request, console, error=error)
    if not current:
        error = "Your password: enter it to turn two-step sign-in on."
        return await _account_page(request, console, error=error)
    async with console.engine.connect() as conn:
        offered = await sessions.offered_totp(conn, console.session)
    if offered is None:  # the page was not opened in this session
        error = "Code from the app: reload this page and add the key it shows to your app."
        return await _account_page(request, console, error=error)
    wrong = "Your password is not right; two-step sign-in is still off."
    if refused := await _password_refused(request, console, current, wrong):
        return await _account_page(request, console, error=refused)
    step = _code_step(offered, entered)
    if step is None:
        error = "That code does not match; two-step sign-in is still off."
        return await _account_page(request, console, error=error)
    async with writing(console.engine) as conn:
        await admins.set_totp(
            conn, console.admin, offered, used_step=step, channel="console", actor=console.actor
        )
        await sessions.offer_totp(conn, console.session, None)
    return back_to("/account", "Two-step sign-in is on.", console)


@router.post("/account/2fa/off", response_class=HTMLResponse)
async def turn_off_2fa(
    request: Request, console: Writing, current: Annotated[str, Form()] = ""
) -> Response:
    if console.admin.totp_secret is None:
        return back_to("/account", "Two-step sign-in is off.", console)
    wrong = "The password is not right; two-step sign-in stays on."
    if refused := await _password_refused(request, console, current, wrong):
        return await _account_page(request, console, error=refused)
    async with writing(console.engine) as conn:
        await admins.set_totp(conn, console.admin, None, channel="console", actor=console.actor)
    return back_to("/account", "Two-step sign-in is off.", console)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    console: Writing,
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
) -> Response:
    wrong = "The current password is not right."
    if refused := await _password_refused(request, console, current, wrong):
        return await _account_page(request, console, error=refused)
    try:
        hashed = hash_password(new)
    except PasswordError as error:
        refused = f"The new password is not accepted: {error}."
        return await _account_page(request, console, error=refused)
    async with writing(console.engine) as conn:
        await admins.set_password(conn, console.tenant.id, console.admin.user_id, hashed)
        # Whoever else holds a session of this admin (a stolen one) is signed out.
        await sessions.revoke_others(conn, console.session)
    return back_to(
        "/account", "Your password is changed; your other sessions are signed out.", console
    )
