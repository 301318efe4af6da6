"""The app's one-time sign-in codes: six digits, short-lived, single-use, a few attempts each;
only a hash is stored."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import key
from roster.store.clock import now
from roster.store.schema import sign_in_codes, tenants, users

LIFETIME = timedelta(minutes=10)
ATTEMPTS = 5  # wrong codes entered for an address before its live codes stop working
PER_ADDRESS = 5  # codes an address may be sent within WINDOW
WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Recipient:
    tenant_id: UUID
    user_id: UUID
    email: str
    organization: str


def _digest(code_id: UUID, code: str) -> str:
    return hashlib.sha256(f"{code_id}:{code}".encode()).hexdigest()


async def recipients(
    conn: AsyncConnection, email: str, organization: str | None
) -> list[Recipient]:
    """Present, active users with this address (in one organization, or in each that has one)."""
    query = (
        sa.select(users.c.tenant_id, users.c.id, users.c.email, tenants.c.slug)
        .join(tenants, tenants.c.tenant_id == users.c.tenant_id)
        .where(
            users.c.email_key == key(email),
            users.c.removed_at.is_(None),
            users.c.active.is_(True),
        )
    )
    if organization:
        query = query.where(tenants.c.slug == organization)
    return [Recipient(*row) for row in await conn.execute(query)]


async def sent_recently(conn: AsyncConnection, email: str) -> int:
    query = sa.select(sa.func.count()).where(
        sign_in_codes.c.email_key == key(email), sign_in_codes.c.created_at > now() - WINDOW
    )
    return (await conn.execute(query)).scalar_one()


async def issue(conn: AsyncConnection, recipient: Recipient) -> str:
    code = f"{secrets.randbelow(10**6):06d}"
    code_id, at = uuid4(), now()
    await conn.execute(
        sign_in_codes.insert().values(
            tenant_id=recipient.tenant_id,
            id=code_id,
            user_id=recipient.user_id,
            email_key=key(recipient.email),
            code_hash=_digest(code_id, code),
            created_at=at,
            expires_at=at + LIFETIME,
        )
    )
    return code


async def redeem(conn: AsyncConnection, email: str, code: str) -> tuple[UUID, UUID] | None:
    """The (organization, user) a live code of this address is for, used up; None otherwise,
    and every wrong try counts against all the address's live codes."""
    at = now()
    live = (
        await conn.execute(
            sa.select(sign_in_codes).where(
                sign_in_codes.c.email_key == key(email),
                sign_in_codes.c.used_at.is_(None),
                sign_in_codes.c.expires_at > at,
                sign_in_codes.c.attempts < ATTEMPTS,
            )
        )
    ).all()
    entered = code.strip()
    for row in live:
        if hmac.compare_digest(_digest(row.id, entered), row.code_hash):
            used = await conn.execute(
                sign_in_codes.update()
                .where(
                    sign_in_codes.c.tenant_id == row.tenant_id,
                    sign_in_codes.c.id == row.id,
                    sign_in_codes.c.used_at.is_(None),
                )
                .values(used_at=at)
            )
            return (row.tenant_id, row.user_id) if used.rowcount == 1 else None
    for row in live:
        await conn.execute(
            sign_in_codes.update()
            .where(sign_in_codes.c.tenant_id == row.tenant_id, sign_in_codes.c.id == row.id)
            .values(attempts=sign_in_codes.c.attempts + 1)
        )
    return None


def expired_before(at: datetime) -> sa.Delete:
    return sign_in_codes.delete().where(sign_in_codes.c.expires_at < at)
