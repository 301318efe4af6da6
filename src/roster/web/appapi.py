"""The app's API (`/app/v1`): sign in with a one-time code sent by e-mail, refresh, sign out,
and `/me`. Roster is the app's identity source: only present, active users get in, and the
directory's apply step revokes a user's sessions the moment any channel removes or disables
them, changes their username or e-mail address."""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from roster import metrics
from roster.domain.fields import FIELD_NAMES, has_control
from roster.domain.sso import REFUSED
from roster.jobs import sso as sso_flow
from roster.store import one_user, sessions, sign_in_codes, sso, tenants
from roster.store.db import writing
from roster.throttle import account_key

log = logging.getLogger("roster.app")
router = APIRouter(prefix="/app/v1", tags=["app"])
ACCESS, REFRESH = sessions.ACCESS, sessions.REFRESH
WRONG_CODE = "That code is not valid (wrong, used or expired)."
SENT = "If this address belongs to someone who may use the app, a sign-in code is on its way."


class CodeRequest(BaseModel):
    email: str = Field(max_length=320, description="The user's work e-mail address.")
    organization: str | None = Field(
        default=None, max_length=63, description="The organization's slug, when the app knows it."
    )


class CodeSent(BaseModel):
    detail: str = SENT


class CodeSignIn(BaseModel):
    """Either an e-mailed code (`email`, `code`) or, after signing in through the
    organization's provider (`GET /app/v1/sign-in/sso`), the one-time `code` it sent to the
    app's redirect URI with the app's PKCE `code_verifier` (and that `redirect_uri`)."""

    email: str | None = Field(default=None, max_length=320)
    code: str = Field(
        max_length=200, description="The six digits from the e-mail, or the SSO one-time code."
    )
    code_verifier: str | None = Field(
        default=None, max_length=128, description="SSO: the PKCE verifier of the challenge sent."
    )
    redirect_uri: str | None = Field(
        default=None,
        max_length=2000,
        description="SSO: the redirect URI the code came to (required with a code_verifier).",
    )


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=200)


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme's name, not a secret)
    expires_in: int = int(ACCESS.total_seconds())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def _throttle(request: Request, count: Callable[[str], None], *keys: str) -> None:
    """429 to a client or address past its attempts (counted by `count` as throttled)."""
    limiter = request.app.state.app_limiter
    peer = request.client.host if request.client else "?"
    if limiter.blocked(peer, *keys):
        count("throttled")
        raise HTTPException(429, "Too many attempts; wait a minute.", headers={"Retry-After": "60"})
    limiter.failed(peer, *keys)


@router.post("/sign-in/code", status_code=202, response_model=CodeSent)
async def request_code(body: CodeRequest, request: Request) -> CodeSent:
    """Send a one-time code to this address. The answer is the same, and as quick, whether or
    not the address belongs to anyone: the code is made and mailed after it (jobs/code_mail)."""
    _throttle(request, metrics.app_sign_in_code, account_key("code", body.email))
    metrics.app_sign_in_code("accepted")
    if has_control(body.email, body.organization):  # nobody's address: the same answer
        return CodeSent()
    request.app.state.code_mail.ask(body.email, body.organization)
    return CodeSent()


@router.post("/sign-in/token", response_model=Tokens)
async def exchange_code(body: CodeSignIn, request: Request) -> Tokens:
    """Exchange a code for an access token (an hour) and a refresh token (30 days)."""
    if body.code_verifier is not None:
        return await _exchange_sso(body, request)
    if body.email is None or len(body.code) > 12:
        metrics.app_sign_in("wrong_code")
        raise _unauthorized(WRONG_CODE)
    _throttle(request, metrics.app_sign_in, account_key("token", body.email))
    if has_control(body.email, body.code):  # nobody's address, no code: the same answer
        metrics.app_sign_in("wrong_code")
        raise _unauthorized(WRONG_CODE)
    async with writing(_engine(request)) as conn:
        found = await sign_in_codes.redeem(conn, body.email, body.code)
        if found is not None and not await sso.codes_allowed(conn, found[0]):
            found = None  # the organization signs in through its provider alone
        if found is not None:
            tenant_id, user_id = found
            _, access, refresh = await sessions.create_app(
                conn, tenant_id, user_id, ACCESS, REFRESH
            )
    # Raised after the commit: a wrong code's counted attempt must stay counted.
    if found is None:
        metrics.app_sign_in("wrong_code")
        raise _unauthorized(WRONG_CODE)
    metrics.app_sign_in("signed_in")
    return Tokens(access_token=access, refresh_token=refresh)


async def _exchange_sso(body: CodeSignIn, request: Request) -> Tokens:
    peer = request.client.host if request.client else "?"
    _throttle(request, metrics.app_sign_in, f"sso:{peer}")
    try:
        access, refresh_token = await sso_flow.exchange(
            _engine(request), body.code, body.code_verifier or "", body.redirect_uri or ""
        )
    except sso_flow.Refused:
        metrics.app_sign_in("wrong_code")
        raise _unauthorized(REFUSED) from None
    metrics.app_sign_in("signed_in")
    return Tokens(access_token=access, refresh_token=refresh_token)


@router.post("/token/refresh", response_model=Tokens)
async def refresh(body: RefreshRequest, request: Request) -> Tokens:
    """New tokens for a refresh token; each refresh token works once, and one used again (a
    copy in other hands) ends its session."""
    async with writing(_engine(request)) as conn:
        renewed = await sessions.refresh(conn, body.refresh_token, ACCESS, REFRESH)
        ended = None if renewed else await sessions.end_replayed(conn, body.refresh_token)
    if ended is not None:
        log.warning("app session %s ended: a replaced refresh token was used again", ended)
    if renewed is None:
        raise _unauthorized("Sign in again.")
    _, access, refresh_token = renewed
    return Tokens(access_token=access, refresh_token=refresh_token)


async def signed_in(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> sessions.Session:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Sign in first.")
    session = await request.app.state.token_check.session(token.strip(), "app")
    if session is None:
        raise _unauthorized("Sign in again.")
    return session


Signed = Annotated[sessions.Session, Depends(signed_in)]


@router.post("/sign-out", status_code=204)
async def sign_out(session: Signed, request: Request) -> None:
    """End this session (its access and refresh token)."""
    async with writing(_engine(request)) as conn:
        await sessions.revoke(conn, session.tenant_id, session.id)


@router.get("/me")
async def me(session: Signed, request: Request) -> dict[str, Any]:
    """The signed-in user's profile: the template's fields."""
    async with _engine(request).connect() as conn:
        row = await one_user.by_id(conn, session.tenant_id, session.user_id)
        tenant = await tenants.by_id(conn, session.tenant_id)
    if row is None:  # removed since the session was checked: its sessions end with it
        raise _unauthorized("Sign in again.")
    return {
        "id": str(row["id"]),
        "organization": tenant.slug,
        **{name: row[name] for name in FIELD_NAMES},
        "role": row["role"],
    }
