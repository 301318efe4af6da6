"""Organizations."""

import re
from dataclasses import dataclass
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import has_control
from roster.domain.mapping import DEFAULT, check_choice, effective
from roster.domain.plan import Guard
from roster.store.clock import now
from roster.store.schema import tenants

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class TenantError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    slug: str
    name: str
    timezone: str
    guard: Guard
    retention_days: int


def _tenant(row: sa.Row[object]) -> Tenant:
    m = row._mapping
    return Tenant(
        m["tenant_id"],
        m["slug"],
        m["name"],
        m["timezone"],
        Guard(m["guard_percent"], m["guard_min_users"]),
        m["retention_days"],
    )


async def create(conn: AsyncConnection, slug: str, name: str) -> Tenant:
    if not SLUG.fullmatch(slug):
        raise TenantError(
            f"'{slug}' is not a valid organization slug: use 1-63 lowercase letters, digits "
            "and inner hyphens"
        )
    if not name.strip() or has_control(name):
        raise TenantError("the organization needs a name, without control characters")
    if await find(conn, slug) is not None:
        raise TenantError(f"an organization with slug '{slug}' already exists")
    await conn.execute(
        tenants.insert().values(tenant_id=uuid4(), slug=slug, name=name.strip(), created_at=now())
    )
    tenant = await find(conn, slug)
    assert tenant is not None
    return tenant


async def find(conn: AsyncConnection, slug: str) -> Tenant | None:
    row = (await conn.execute(sa.select(tenants).where(tenants.c.slug == slug))).first()
    return _tenant(row) if row else None


async def get(conn: AsyncConnection, slug: str) -> Tenant:
    tenant = await find(conn, slug)
    if tenant is None:
        raise TenantError(f"there is no organization '{slug}'")
    return tenant


async def all_tenants(conn: AsyncConnection) -> list[Tenant]:
    return [_tenant(r) for r in await conn.execute(sa.select(tenants).order_by(tenants.c.slug))]


async def scim_mapping(conn: AsyncConnection, tenant_id: UUID) -> dict[str, str | None]:
    """The organization's SCIM attribute mapping (defaults with its choices on top)."""
    custom = (
        await conn.execute(
            sa.select(tenants.c.scim_mapping).where(tenants.c.tenant_id == tenant_id)
        )
    ).scalar_one()
    return effective(custom or {})


async def choose_scim_source(
    conn: AsyncConnection, tenant_id: UUID, field: str, source: str | None
) -> dict[str, str | None]:
    """Feed `field` from `source` (None: switch it off); "default" restores the default."""
    check_choice(field, source if source != "default" else DEFAULT[field])
    custom = dict(
        (
            await conn.execute(
                sa.select(tenants.c.scim_mapping).where(tenants.c.tenant_id == tenant_id)
            )
        ).scalar_one()
        or {}
    )
    if source == "default":
        custom.pop(field, None)
    else:
        custom[field] = source
    await conn.execute(
        tenants.update().where(tenants.c.tenant_id == tenant_id).values(scim_mapping=custom)
    )
    return effective(custom)


GUARD_PERCENT = range(1, 101)
GUARD_MIN_USERS = range(0, 1_000_001)


async def set_guard(conn: AsyncConnection, tenant_id: UUID, percent: int, min_users: int) -> Guard:
    """The deletion guard's thresholds; out-of-range values are refused, naming the setting."""
    if percent not in GUARD_PERCENT:
        raise TenantError("the percentage must be a whole number from 1 to 100")
    if min_users not in GUARD_MIN_USERS:
        raise TenantError("the minimum number of users must be a whole number from 0 to 1,000,000")
    await conn.execute(
        tenants.update()
        .where(tenants.c.tenant_id == tenant_id)
        .values(guard_percent=percent, guard_min_users=min_users)
    )
    return Guard(percent, min_users)


async def by_id(conn: AsyncConnection, tenant_id: UUID) -> Tenant:
    row = (await conn.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id))).one()
    return _tenant(row)
