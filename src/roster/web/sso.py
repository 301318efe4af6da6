"""Sign-in through the organization's OpenID Connect provider: the app's start
(`GET /app/v1/sign-in/sso`, RFC 8252: opened in the system browser), the console's
(`GET /signin/sso`), and the callback both come back to (`GET /sso/callback/{organization}`,
the redirect URL the organization registers at its provider). The flow itself is jobs/sso.py.

A start gives the browser a binding cookie (kept as its hash with the attempt) that only the
callback receives: an answer is accepted only from the browser that began its sign-in, so no
one can finish their own sign-in in someone else's browser (login CSRF)."""

import re
import secrets
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from roster.domain.sso import REFUSED
from roster.jobs import sso as flow
from roster.oidc import Provider
from roster.store import tenants
from roster.store.sso import ATTEMPT_LIFETIME
from roster.web.console import auth
from roster.web.console.common import page

router = APIRouter()


def _oidc(request: Request) -> Provider:
    provider: Provider = request.app.state.oidc
    return provider


def _not_possible(
    request: Request, back: str | None = None, status_code: int = 403
) -> HTMLResponse:
    """The one answer every refusal gets: nothing about why (the audit trail keeps that)."""
    return page(
        request, "message.html", None, status_code, heading="Sign-in was not possible",
        message=f"{REFUSED} Ask your organization's admin if you think you should have access.",
        back=back or "/signin",
    )  # fmt: skip


def _too_many(request: Request, limiter_name: str) -> bool:
    """Each start writes an attempt: a client address gets as many a minute as it gets sign-in
    attempts (ROSTER_APP_SIGN_IN_ATTEMPTS_PER_MINUTE, ROSTER_CONSOLE_FAILED_LOGINS_PER_MINUTE)."""
    limiter = getattr(request.app.state, limiter_name)
    key = f"sso-start:{request.client.host if request.client else '?'}"
    if limiter.blocked(key):
        return True
    limiter.failed(key)
    return False


BROWSER = "roster_sso"  # the binding cookie
_BROWSER_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


def _browser(request: Request) -> str:
    """The browser's binding secret: the one it has (several sign-ins of one browser at once
    all finish), else a new one."""
    kept = request.cookies.get(BROWSER, "")
    return kept if _BROWSER_SECRET.fullmatch(kept) else secrets.token_urlsafe(32)


def _bound(request: Request, target: str, browser: str) -> Response:
    """The redirect to the provider, the binding cookie set: sent back on the provider's
    redirect to the callback (a cross-site top-level GET, so SameSite=Lax), and nowhere else."""
    response = RedirectResponse(target, status_code=302)
    response.set_cookie(
        BROWSER, browser, max_age=int(ATTEMPT_LIFETIME.total_seconds()), httponly=True,
        secure=request.app.state.settings.console_secure_cookies, samesite="lax",
        path=flow.CALLBACK,
    )  # fmt: skip
    return response


def _with_query(uri: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


@router.get("/app/v1/sign-in/sso", tags=["app"], response_class=RedirectResponse, status_code=302)
async def app_sign_in(
    request: Request,
    organization: Annotated[str, Query(max_length=63)],
    redirect_uri: Annotated[str, Query(max_length=2000)],
    code_challenge: Annotated[str, Query(max_length=128)],
    code_challenge_method: Annotated[str, Query(max_length=10)] = "S256",
    state: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Open in the system browser: sends the person to the organization's provider. Coming
    back, the browser is sent to `redirect_uri` (one the organization registered) with `code`
    (one-time, two minutes) and the app's `state`, which the app exchanges with its PKCE
    verifier at `POST /app/v1/sign-in/token`. Only S256 challenges are accepted."""
    if code_challenge_method != "S256":
        code_challenge = ""
    if _too_many(request, "app_limiter"):
        raise HTTPException(429, "Too many attempts; wait a minute.", headers={"Retry-After": "60"})
    browser = _browser(request)
    try:
        target = await flow.begin(
            request.app.state.engine, request.app.state.settings, _oidc(request), organization,
            "app", browser, redirect_uri=redirect_uri, code_challenge=code_challenge,
            app_state=state,
        )  # fmt: skip
    except flow.Refused:
        return _not_possible(request, back=None, status_code=400)
    return _bound(request, target, browser)


@router.get("/signin/sso", include_in_schema=False)
async def console_sign_in(
    request: Request,
    organization: Annotated[str, Query(max_length=63)] = "",
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if _too_many(request, "console_limiter"):
        raise HTTPException(429, "Too many attempts; wait a minute.", headers={"Retry-After": "60"})
    browser = _browser(request)
    try:
        target = await flow.begin(
            request.app.state.engine, request.app.state.settings, _oidc(request), organization,
            "console", browser, next_path=auth.safe_next(next),
        )  # fmt: skip
    except flow.Refused:
        return _not_possible(request, status_code=400)
    return _bound(request, target, browser)


def _arrive(request: Request, response: Response) -> Response:
    """The console's session cookie is SameSite=Strict, and a browser treats the redirects
    that follow the provider's as cross-site, so the cookie would not be sent to the next
    page: a page of this site sends the browser on instead, with the cookie set."""
    location = response.headers["location"]
    arrived = page(request, "sso_arrived.html", None, target=location)
    for value in response.headers.getlist("set-cookie"):
        arrived.headers.append("set-cookie", value)
    return arrived


@router.get(f"{flow.CALLBACK}/{{organization}}", include_in_schema=False)
async def callback(
    request: Request,
    organization: Annotated[str, Path(max_length=63)],
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    iss: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Where the organization's provider sends the person back, for the app and the console
    alike."""
    engine, settings = request.app.state.engine, request.app.state.settings
    # Refused answers are counted per client address: past the limit they are not looked at
    # (nor recorded), so made-up answers cannot fill an organization's audit trail.
    limiter = request.app.state.console_limiter
    refusals = f"sso-refused:{request.client.host if request.client else '?'}"
    if limiter.blocked(refusals):
        raise HTTPException(429, "Too many attempts; wait a minute.", headers={"Retry-After": "60"})
    try:
        answer = flow.Answer(
            organization, state, code, error, iss, request.cookies.get(BROWSER, "")
        )
        finished = await flow.finish(engine, settings, _oidc(request), answer)
    except flow.Refused as refused:
        limiter.failed(refusals)
        attempt = refused.attempt
        back = None
        if attempt is not None and attempt.client == "app" and attempt.redirect_uri:
            back = _with_query(
                attempt.redirect_uri, error="access_denied", error_description=REFUSED,
                state=attempt.app_state,
            )  # fmt: skip
        return _not_possible(request, back)
    attempt = finished.attempt
    if attempt.client == "app":
        assert attempt.redirect_uri
        one_time = await flow.app_code(engine, finished)
        target = _with_query(attempt.redirect_uri, code=one_time, state=attempt.app_state)
        return RedirectResponse(target, status_code=302)
    assert finished.admin is not None
    started = await auth.start(request, finished.admin, auth.safe_next(attempt.next_path))
    async with engine.connect() as conn:
        tenant = await tenants.by_id(conn, attempt.tenant_id)
    auth.remember_organization(request, started, tenant.slug)
    return _arrive(request, started)
