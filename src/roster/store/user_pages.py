"""What the console's page of one user reads (the user, their audit trail), and the sign-outs an
admin starts there and on the list. Every query is bound to one organization."""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.plan import WRITABLE
from roster.store import sessions
from roster.store.clock import now
from roster.store.directory import audit_event, record_events, revoke_sessions
from roster.store.schema import audit_events, users
from roster.store.schema import sessions as sessions_table

TRAIL = 100  # newest events shown on a user's page; the audit log has the rest

_SHOWN = (
    *(users.c[name] for name in WRITABLE),
    users.c.id,
    users.c.managed_by,
    users.c.version,
    users.c.created_at,
    users.c.updated_at,
)


async def user(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    """A present user of this organization, every column the page shows; None otherwise."""
    query = sa.select(*_SHOWN).where(
        users.c.tenant_id == tenant_id, users.c.id == user_id, users.c.removed_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row else None


async def trail(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, limit: int = TRAIL
) -> list[dict[str, Any]]:
    """The user's audit events, newest first (served by the (tenant, user, at) index)."""
    query = (
        sa.select(audit_events)
        .where(audit_events.c.tenant_id == tenant_id, audit_events.c.user_id == user_id)
        .order_by(audit_events.c.at.desc(), audit_events.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


async def changes_since(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, version: int, limit: int = TRAIL
) -> list[dict[str, Any]]:
    """The user's audit events that made versions after `version`, oldest first: what changed
    since a form showing that version was opened."""
    query = (
        sa.select(audit_events)
        .where(
            audit_events.c.tenant_id == tenant_id,
            audit_events.c.user_id == user_id,
            audit_events.c.user_version > version,
        )
        .order_by(audit_events.c.user_version, audit_events.c.at)
        .limit(limit)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


async def sign_out(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, actor: str) -> int:
    """End every session of one user (app and console), recorded in their audit trail.
    Returns how many were open."""
    count = len(await sessions.active(conn, tenant_id, user_id))
    at = now()
    await revoke_sessions(conn, tenant_id, [user_id], at)
    event = audit_event(
        tenant_id, at, "console", actor, "signed_out", user_id=user_id, after={"sessions": count}
    )
    await record_events(conn, [event])
    return count


async def sign_out_everyone(
    conn: AsyncConnection, tenant_id: UUID, actor: str, channel: str = "console"
) -> int:
    """End every app session of the organization (admins stay signed in to the console),
    recorded in the audit trail. Returns how many were open."""
    at = now()
    live = sa.select(sa.func.count()).where(
        sessions_table.c.tenant_id == tenant_id,
        sessions_table.c.kind == "app",
        sessions_table.c.revoked_at.is_(None),
        sessions_table.c.expires_at > at,
    )
    count = int((await conn.execute(live)).scalar_one())  # expired ones are no news
    await sessions.revoke_all(conn, tenant_id, kind="app")
    event = audit_event(tenant_id, at, channel, actor, "signed_out_all", after={"sessions": count})
    await record_events(conn, [event])
    return count
