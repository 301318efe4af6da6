"""Sessions of the console and the app: random tokens, stored as their SHA-256, that end when
they expire, when their owner signs out, or when the directory revokes them (the user was
removed, deactivated, or changed username or e-mail)."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.store.clock import now
from roster.store.schema import sessions, spent_refresh_tokens, users

# <organization id>.<secret>: the organization is known before the token is looked up.
TOKEN = re.compile(r"([0-9a-f]{32})\.([A-Za-z0-9_-]{43})")
ACCESS = timedelta(hours=1)  # an app session's access token lives this long
REFRESH = timedelta(days=30)  # and its refresh token this long
# A replaced refresh token presented again within this time of its refresh is taken for a race
# between the app's own requests (refused; the session lives on), later for a replay.
RACE = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Session:
    id: UUID
    tenant_id: UUID
    user_id: UUID
    kind: str
    created_at: datetime
    expires_at: datetime


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def user_present(table: sa.Table) -> sa.Exists:
    """Whether the user a row of `table` (its tenant_id and user_id) names is present and
    active: the condition every credential of a user is only good under."""
    return sa.exists().where(
        users.c.tenant_id == table.c.tenant_id,
        users.c.id == table.c.user_id,
        users.c.removed_at.is_(None),
        users.c.active.is_(True),
    )


async def create(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, kind: str, lifetime: timedelta
) -> tuple[Session, str]:
    """A new session and its token, which is never stored."""
    secret = secrets.token_urlsafe(32)
    at = now()
    session = Session(uuid4(), tenant_id, user_id, kind, at, at + lifetime)
    await conn.execute(
        sessions.insert().values(
            tenant_id=tenant_id,
            id=session.id,
            user_id=user_id,
            token_hash=digest(secret),
            kind=kind,
            created_at=at,
            expires_at=session.expires_at,
        )
    )
    return session, f"{tenant_id.hex}.{secret}"


async def create_app(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, access: timedelta, refresh: timedelta
) -> tuple[Session, str, str]:
    """An app session: a short-lived access token and a longer-lived refresh token."""
    session, token = await create(conn, tenant_id, user_id, "app", access)
    refresh_token = await _new_refresh(conn, session, refresh)
    return session, token, refresh_token


async def _new_refresh(conn: AsyncConnection, session: Session, lifetime: timedelta) -> str:
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        sessions.update()
        .where(sessions.c.tenant_id == session.tenant_id, sessions.c.id == session.id)
        .values(refresh_hash=digest(secret), refresh_expires_at=now() + lifetime)
    )
    return f"{session.tenant_id.hex}.{secret}"


def parse(presented: str) -> tuple[UUID, str] | None:
    """A presented token's organization and the hash it is stored as; None when it cannot be
    one of ours."""
    match = TOKEN.fullmatch(presented or "")
    return (UUID(match[1]), digest(match[2])) if match else None


def _live(token_hash: sa.Column[Any], expires_at: sa.Column[Any]) -> sa.Select[Any]:
    """Sessions by one of their token hashes (bound values t, h, k, now): unexpired by that
    token's expiry, not revoked, of a present, active user."""
    return (
        sa.select(sessions.c.id, sessions.c.user_id, sessions.c.created_at, sessions.c.expires_at)
        .join(
            users, (users.c.tenant_id == sessions.c.tenant_id) & (users.c.id == sessions.c.user_id)
        )
        .where(
            sessions.c.tenant_id == sa.bindparam("t"),
            token_hash == sa.bindparam("h"),
            sessions.c.kind == sa.bindparam("k"),
            sessions.c.revoked_at.is_(None),
            expires_at > sa.bindparam("now"),
            users.c.removed_at.is_(None),
            users.c.active.is_(True),
        )
    )


# Built once: LIVE runs on every request of the app, and building a statement costs more than
# running it.
LIVE = _live(sessions.c.token_hash, sessions.c.expires_at)


async def find(conn: AsyncConnection, presented: str, kind: str) -> Session | None:
    """The live session of a present, active user this token is; None for every kind of wrong."""
    parsed = parse(presented)
    if parsed is None:
        return None
    tenant_id, hashed = parsed
    found = await conn.execute(LIVE, {"t": tenant_id, "h": hashed, "k": kind, "now": now()})
    row = found.first()
    if row is None:
        return None
    return Session(row.id, tenant_id, row.user_id, kind, row.created_at, row.expires_at)


async def refresh(
    conn: AsyncConnection, presented: str, access: timedelta, lifetime: timedelta
) -> tuple[Session, str, str] | None:
    """Replace both tokens of the app session this refresh token belongs to, in one conditional
    write on the token's hash: of two refreshes with one token exactly one gets new tokens.
    None when it is not a live one of a present, active user."""
    parsed = parse(presented)
    if parsed is None:
        return None
    tenant_id, hashed = parsed
    at = now()
    access_secret, refresh_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    rotated = await conn.execute(
        sessions.update()
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.refresh_hash == hashed,
            sessions.c.kind == "app",
            sessions.c.revoked_at.is_(None),
            sessions.c.refresh_expires_at > at,
            user_present(sessions),
        )
        .values(
            token_hash=digest(access_secret),
            expires_at=at + access,
            refresh_hash=digest(refresh_secret),
            refresh_expires_at=at + lifetime,
        )
        .returning(sessions.c.id, sessions.c.user_id, sessions.c.created_at)
    )
    row = rotated.first()
    if row is None:
        return None
    await conn.execute(
        spent_refresh_tokens.insert().values(
            tenant_id=tenant_id, token_hash=hashed, session_id=row.id, spent_at=at
        )
    )
    session = Session(row.id, tenant_id, row.user_id, "app", row.created_at, at + access)
    return session, f"{tenant_id.hex}.{access_secret}", f"{tenant_id.hex}.{refresh_secret}"


async def end_replayed(conn: AsyncConnection, presented: str) -> UUID | None:
    """End the app session a refresh took this refresh token from, however many refreshes ago,
    unless that refresh was a moment ago (RACE); the session ended, if any. A replaced token
    presented again is a copy in other hands (OAuth's advice for rotated refresh tokens: the
    whole session ends); within RACE it is the loser of two refreshes the app sent at once."""
    parsed = parse(presented)
    if parsed is None:
        return None
    tenant_id, hashed = parsed
    at = now()
    spent = (
        sa.select(spent_refresh_tokens.c.session_id)
        .where(
            spent_refresh_tokens.c.tenant_id == tenant_id,
            spent_refresh_tokens.c.token_hash == hashed,
            spent_refresh_tokens.c.spent_at <= at - RACE,
        )
        .scalar_subquery()
    )
    ended = await conn.execute(
        sessions.update()
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.id == spent,
            sessions.c.kind == "app",
            sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=at)
        .returning(sessions.c.id)
    )
    return ended.scalars().first()


async def forget_spent(conn: AsyncConnection, lifetime: timedelta = REFRESH) -> int:
    """Forget replaced refresh tokens older than a refresh token lives (no copy of one can
    still be used); how many."""
    gone = await conn.execute(
        spent_refresh_tokens.delete().where(spent_refresh_tokens.c.spent_at < now() - lifetime)
    )
    return gone.rowcount


async def revoke(conn: AsyncConnection, tenant_id: UUID, session_id: UUID) -> None:
    await conn.execute(
        sessions.update()
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.id == session_id,
            sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )


async def revoke_others(conn: AsyncConnection, session: Session) -> None:
    """End every other session of this session's user (e.g. after a password change)."""
    await conn.execute(
        sessions.update()
        .where(
            sessions.c.tenant_id == session.tenant_id,
            sessions.c.user_id == session.user_id,
            sessions.c.id != session.id,
            sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )


async def revoke_kinds(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, kinds: tuple[str, ...]
) -> int:
    """End one user's open sessions of these kinds; how many there were."""
    query = sessions.update().where(
        sessions.c.tenant_id == tenant_id,
        sessions.c.user_id == user_id,
        sessions.c.kind.in_(kinds),
        sessions.c.revoked_at.is_(None),
    )
    return (await conn.execute(query.values(revoked_at=now()))).rowcount


def _this(session: Session) -> sa.ColumnElement[bool]:
    return sa.and_(sessions.c.tenant_id == session.tenant_id, sessions.c.id == session.id)


async def offered_totp(conn: AsyncConnection, session: Session) -> str | None:
    """The two-step key this console session offered its admin, if it has offered one."""
    found = await conn.execute(sa.select(sessions.c.totp_offered).where(_this(session)))
    return found.scalar_one_or_none()


async def offer_totp(conn: AsyncConnection, session: Session, secret: str | None) -> None:
    """Keep (or, with None, forget) the two-step key offered on this console session."""
    await conn.execute(sessions.update().where(_this(session)).values(totp_offered=secret))


async def revoke_all(conn: AsyncConnection, tenant_id: UUID, kind: str | None = None) -> int:
    """Sign everyone of the organization out (of one kind of session, or of all)."""
    query = sessions.update().where(
        sessions.c.tenant_id == tenant_id, sessions.c.revoked_at.is_(None)
    )
    if kind is not None:
        query = query.where(sessions.c.kind == kind)
    return (await conn.execute(query.values(revoked_at=now()))).rowcount


async def active(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> list[Session]:
    query = (
        sa.select(sessions)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now(),
        )
        .order_by(sessions.c.created_at.desc())
    )
    return [
        Session(r.id, r.tenant_id, r.user_id, r.kind, r.created_at, r.expires_at)
        for r in await conn.execute(query)
    ]
