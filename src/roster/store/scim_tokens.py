"""SCIM bearer tokens: shown once, stored as the SHA-256 of their secret."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import has_control
from roster.domain.mapping import effective
from roster.store.clock import now
from roster.store.prepared import Connection, Source, prepared
from roster.store.schema import scim_tokens, tenants

# scim_<organization id>_<secret>: the organization is found without scanning every token.
_TOKEN = re.compile(r"scim_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Token:
    id: UUID
    tenant_id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    # The organization's SCIM attribute mapping, read with the token (one query a request).
    mapping: dict[str, str | None] = field(default_factory=dict)
    organization: str = ""  # its slug, read with the token (what metrics name it by)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create(conn: AsyncConnection, tenant_id: UUID, name: str) -> tuple[Token, str]:
    """A new token and its clear text, which is never stored and cannot be shown again."""
    name = name.strip()
    if not 1 <= len(name) <= 100 or has_control(name):
        raise ValueError("a token needs a name of 1 to 100 characters, without control characters")
    secret = secrets.token_urlsafe(32)
    token_id, at = uuid4(), now()
    await conn.execute(
        scim_tokens.insert().values(
            tenant_id=tenant_id, id=token_id, name=name, secret_hash=_digest(secret), created_at=at
        )
    )
    return Token(token_id, tenant_id, name, at, None, None), f"scim_{tenant_id.hex}_{secret}"


async def listed(conn: AsyncConnection, tenant_id: UUID) -> list[Token]:
    query = (
        sa.select(scim_tokens)
        .where(scim_tokens.c.tenant_id == tenant_id)
        .order_by(scim_tokens.c.created_at)
    )
    return [
        Token(r.id, r.tenant_id, r.name, r.created_at, r.last_used_at, r.revoked_at)
        for r in await conn.execute(query)
    ]


async def revoke(conn: AsyncConnection, tenant_id: UUID, token_id: UUID) -> bool:
    result = await conn.execute(
        scim_tokens.update()
        .where(
            scim_tokens.c.tenant_id == tenant_id,
            scim_tokens.c.id == token_id,
            scim_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )
    return result.rowcount == 1


_LIVE = (
    sa.select(scim_tokens, tenants.c.scim_mapping, tenants.c.slug)
    .join(tenants, tenants.c.tenant_id == scim_tokens.c.tenant_id)
    .where(
        scim_tokens.c.tenant_id == sa.bindparam("t"),
        scim_tokens.c.secret_hash == sa.bindparam("h"),
        scim_tokens.c.revoked_at.is_(None),
    )
)


async def authenticate(conn: Source, presented: str) -> Token | None:
    """The live token this bearer value is, or None — the same None for every kind of wrong."""
    match = _TOKEN.fullmatch(presented)
    if match is None:
        return None
    tenant_id, digest = UUID(match.group(1)), _digest(match.group(2))
    row = await prepared(_LIVE).first(conn, {"t": tenant_id, "h": digest})
    if row is None or not hmac.compare_digest(row["secret_hash"], digest):
        return None
    return Token(
        row["id"],
        row["tenant_id"],
        row["name"],
        row["created_at"],
        row["last_used_at"],
        None,
        effective(row["scim_mapping"] or {}),
        row["slug"],
    )


# A token's last use is written at most this often: the value says "in use lately", and a
# write per request would cost more than the request.
USE_RECORDED_EVERY = timedelta(seconds=60)
_USED = (
    scim_tokens.update()
    .where(
        scim_tokens.c.tenant_id == sa.bindparam("t"),
        scim_tokens.c.id == sa.bindparam("token"),
        sa.or_(
            scim_tokens.c.last_used_at.is_(None),
            scim_tokens.c.last_used_at <= sa.bindparam("due"),
        ),
    )
    .values(last_used_at=sa.bindparam("at"))
)


def use_due(token: Token) -> bool:
    """Whether the token's recorded last use (as read when it was verified) is old enough to
    write anew."""
    return token.last_used_at is None or now() - token.last_used_at >= USE_RECORDED_EVERY


async def record_use(conn: Connection, token: Token) -> bool:
    """Record that the token was used now, unless a use within USE_RECORDED_EVERY is recorded
    already (by this process or another replica: one conditional write); whether it wrote."""
    at = now()
    values = {"t": token.tenant_id, "token": token.id, "due": at - USE_RECORDED_EVERY, "at": at}
    return await prepared(_USED).run(conn, values) == 1
