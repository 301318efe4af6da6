"""Organizations."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import text_problem
from roster.domain.mapping import DEFAULT, check_choice, effective
from roster.domain.notices import KINDS
from roster.domain.plan import Guard
from roster.domain.schedule import ScheduleError, zone
from roster.store import dropboxes
from roster.store.clock import now
from roster.store.schema import tenants

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class TenantError(Exception):
    """A setting refused; `field` names it (the console shows the message under that field)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    slug: str
    name: str
    timezone: str
    guard: Guard
    retention_days: int
    notices_off: frozenset[str] = frozenset()  # kinds its admins are not mailed


def _tenant(row: sa.Row[object]) -> Tenant:
    m = row._mapping
    return Tenant(
        m["tenant_id"],
        m["slug"],
        m["name"],
        m["timezone"],
        Guard(m["guard_percent"], m["guard_min_users"]),
        m["retention_days"],
        frozenset(m["notices_off"] or ()),
    )


async def create(conn: AsyncConnection, slug: str, name: str) -> Tenant:
    if not SLUG.fullmatch(slug):
        raise TenantError(
            f"'{slug}' is not a valid organization slug: use 1-63 lowercase letters, digits "
            "and inner hyphens"
        )
    name = check_name(name)
    if await find(conn, slug) is not None:
        raise TenantError(f"an organization with slug '{slug}' already exists")
    await conn.execute(
        tenants.insert().values(tenant_id=uuid4(), slug=slug, name=name, created_at=now())
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
# Removed users, pickup files and provisioning log entries are kept this many days: at least one,
# so an import can still be undone the day it ran.
RETENTION_DAYS = range(1, 3651)
NAME_LENGTH = cast(sa.String, tenants.c.name.type).length or 0


def check_name(name: str) -> str:
    """A name by the directory's text rules (no control, invisible or line-breaking character:
    it heads pages and the subjects of the notices mailed to admins)."""
    name = name.strip()
    problem = text_problem(name)
    if problem:
        raise TenantError(f"the name {problem.message}", "name")
    if not name or len(name) > NAME_LENGTH:
        raise TenantError(f"the organization needs a name of 1 to {NAME_LENGTH} characters", "name")
    return name


def check_timezone(name: str) -> str:
    try:
        zone(name.strip())
    except ScheduleError as error:
        raise TenantError(str(error), "timezone") from None
    return name.strip()


def check_retention(days: int) -> int:
    if days not in RETENTION_DAYS:
        raise TenantError(
            "the retention must be a whole number of days from 1 to 3,650", "retention_days"
        )
    return days


def check_guard_percent(percent: int) -> int:
    if percent not in GUARD_PERCENT:
        raise TenantError("the percentage must be a whole number from 1 to 100", "guard_percent")
    return percent


def check_guard_min_users(min_users: int) -> int:
    if min_users not in GUARD_MIN_USERS:
        raise TenantError(
            "the minimum number of users must be a whole number from 0 to 1,000,000",
            "guard_min_users",
        )
    return min_users


def check_notices(kinds: Iterable[str]) -> list[str]:
    unknown = set(kinds) - KINDS.keys()
    if unknown:
        raise TenantError(
            f"{', '.join(sorted(unknown))}: no such notice; the kinds are {', '.join(KINDS)}",
            "notices_off",
        )
    return sorted(set(kinds))


async def configure(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    name: str | None = None,
    timezone: str | None = None,
    retention_days: int | None = None,
    guard: Guard | None = None,
    notices_off: Iterable[str] | None = None,
) -> Tenant:
    """Change the organization's settings (those given: `notices_off` the kinds of notice its
    admins are not mailed); a value out of range is refused,
    naming its setting, and nothing is written. The drop box's next daily pickup follows a new
    time zone at once."""
    before = await by_id(conn, tenant_id)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = check_name(name)
    if timezone is not None:
        timezone = values["timezone"] = check_timezone(timezone)
    if retention_days is not None:
        values["retention_days"] = check_retention(retention_days)
    if guard is not None:
        values["guard_percent"] = check_guard_percent(guard.percent)
        values["guard_min_users"] = check_guard_min_users(guard.min_users)
    if notices_off is not None:
        values["notices_off"] = check_notices(notices_off)
    if values:
        await conn.execute(
            tenants.update().where(tenants.c.tenant_id == tenant_id).values(**values)
        )
    if timezone is not None and timezone != before.timezone:
        await dropboxes.follow_zone(conn, tenant_id, timezone)
    return await by_id(conn, tenant_id)


async def by_id(conn: AsyncConnection, tenant_id: UUID) -> Tenant:
    row = (await conn.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id))).one()
    return _tenant(row)
