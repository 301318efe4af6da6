"""The app's API (`/app/v1`): sign in with a one-time code sent by e-mail, refresh, sign out,
and `/me`. Roster is the app's identity source: only present, active users get in, and the
directory's apply step revokes a user's sessions the moment any channel removes or disables
them, changes their username or e-mail address."""

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from roster import mail
from roster.domain.fields import FIELD_NAMES, key
from roster.settings import Settings
from roster.store import sessions, sign_in_codes, tenants
from roster.store.db import writing
from roster.store.schema import users

log = logging.getLogger("roster.app")
router = APIRouter(prefix="/app/v1", tags=["app"])
ACCESS = timedelta(hours=1)
REFRESH = timedelta(days=30)
SENT = "If this address belongs to someone who may use the app, a sign-in code is on its way."


class CodeRequest(BaseModel):
    email: str = Field(max_length=320, description="The user's work e-mail address.")
    organization: str | None = Field(
        default=None, max_length=63, description="The organization's slug, when the app knows it."
    )


class CodeSent(BaseModel):
    detail: str = SENT


class CodeSignIn(BaseModel):
    email: str = Field(max_length=320)
    code: str = Field(max_length=12, description="The six digits from the e-mail.")


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


def _throttle(request: Request, *keys: str) -> None:
    limiter = request.app.state.app_limiter
    peer = request.client.host if request.client else "?"
    if limiter.blocked(peer, *keys):
        raise HTTPException(429, "Too many attempts; wait a minute.", headers={"Retry-After": "60"})
    limiter.failed(peer, *keys)


@router.post("/sign-in/code", status_code=202, response_model=CodeSent)
async def request_code(
    body: CodeRequest, request: Request, background: BackgroundTasks
) -> CodeSent:
    """Send a one-time code to this address. The answer is the same whether or not the address
    belongs to anyone, and the mail goes out after it, so neither says who exists."""
    _throttle(request, f"code:{key(body.email.strip())}")
    settings: Settings = request.app.state.settings
    messages = []
    async with writing(_engine(request)) as conn:
        if await sign_in_codes.sent_recently(conn, body.email) < sign_in_codes.PER_ADDRESS:
            for recipient in await sign_in_codes.recipients(conn, body.email, body.organization):
                code = await sign_in_codes.issue(conn, recipient)
                messages.append(_message(recipient, code))
    for message in messages:
        background.add_task(_deliver, settings, message)
    return CodeSent()


def _message(recipient: sign_in_codes.Recipient, code: str) -> mail.Message:
    minutes = int(sign_in_codes.LIFETIME.total_seconds() // 60)
    return mail.Message(
        recipient.email,
        f"Your sign-in code: {code}",
        f"Your code to sign in to the workplace app ({recipient.organization}) is {code}.\n"
        f"It works once, for {minutes} minutes. If you did not ask for it, ignore this mail.\n",
    )


async def _deliver(settings: Settings, message: mail.Message) -> None:
    try:
        await mail.send(settings, message)
    except Exception:  # SMTP fails in many ways; the user asks again, the log says why
        log.exception("sending a sign-in code failed")


@router.post("/sign-in/token", response_model=Tokens)
async def exchange_code(body: CodeSignIn, request: Request) -> Tokens:
    """Exchange a code for an access token (an hour) and a refresh token (30 days)."""
    _throttle(request, f"token:{key(body.email.strip())}")
    async with writing(_engine(request)) as conn:
        found = await sign_in_codes.redeem(conn, body.email, body.code)
        if found is not None:
            tenant_id, user_id = found
            _, access, refresh = await sessions.create_app(
                conn, tenant_id, user_id, ACCESS, REFRESH
            )
    # Raised after the commit: a wrong code's counted attempt must stay counted.
    if found is None:
        raise _unauthorized("That code is not valid (wrong, used or expired).")
    return Tokens(access_token=access, refresh_token=refresh)


@router.post("/token/refresh", response_model=Tokens)
async def refresh(body: RefreshRequest, request: Request) -> Tokens:
    """New tokens for a refresh token; each refresh token works once."""
    async with writing(_engine(request)) as conn:
        renewed = await sessions.refresh(conn, body.refresh_token, ACCESS, REFRESH)
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
        row = (
            await conn.execute(
                users.select().where(
                    users.c.tenant_id == session.tenant_id, users.c.id == session.user_id
                )
            )
        ).one()
        tenant = await tenants.by_id(conn, session.tenant_id)
    return {
        "id": str(row.id),
        "organization": tenant.slug,
        **{name: row._mapping[name] for name in FIELD_NAMES},
        "role": row.role,
    }
