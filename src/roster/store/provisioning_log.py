"""The provisioning log: what each SCIM request of an organization did, written in batches
and read newest first like the audit log (one row more than a page tells whether an older page
exists; every query leads with tenant_id, so the (tenant_id, at) index serves it)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import has_control
from roster.store.audit import PER_PAGE, contains, on_days
from roster.store.prepared import Connection, prepared
from roster.store.schema import provisioning_log, tenants

PURGE_BATCH = 5000  # rows one delete removes, so retention never holds a long lock
_STATUS = re.compile(r"([1-5])xx|([1-5]\d\d)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    token: str  # the token's name
    method: str
    path: str
    status: int
    resource_id: str | None
    user_name: str | None  # the userName, or the group's displayName
    detail: str  # the outcome in words
    warnings: list[str]
    duration_ms: float


def status_problem(status: str) -> str | None:
    """Why a status filter (`4xx`, `5xx`, a code such as `409`) is not one, or None."""
    if not status or _STATUS.fullmatch(status.strip()):
        return None
    return f"'{status}' is not a status: use 2xx, 4xx, 5xx or a code such as 409"


@dataclass(frozen=True)
class Filter:
    status: str = ""  # a class (`4xx`) or a code (`409`); see status_problem
    user: str = ""  # the userName or group name contains this (case-insensitive)
    since: date | None = None  # from this day on, in the organization's zone
    until: date | None = None  # up to and including this day
    page: int = 1

    def conditions(self, tz: ZoneInfo) -> list[sa.ColumnElement[bool]]:
        found = on_days(provisioning_log.c.at, self.since, self.until, tz)
        status = _STATUS.fullmatch(self.status.strip())
        if status and status.group(1):
            hundreds = int(status.group(1)) * 100
            found.append(provisioning_log.c.status.between(hundreds, hundreds + 99))
        elif status:
            found.append(provisioning_log.c.status == int(status.group(2)))
        if self.user.strip():
            found.append(contains(provisioning_log.c.user_name, self.user.strip()))
        return found


_INSERT = provisioning_log.insert().inline()  # the ids the table gives are not read back


async def record(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write log rows (each a mapping of every column of the table, `warnings` one a line: no
    JSON to encode, as a row of a busy client's costs CPU of SCIM's) in one executemany."""
    await prepared(_INSERT).many(conn, rows)


def _entry(row: Any) -> Entry:
    m = row._mapping
    fields = {name: m[name] for name in Entry.__dataclass_fields__}
    return Entry(**fields | {"warnings": m["warnings"].splitlines()})


async def search(
    conn: AsyncConnection, tenant_id: UUID, wanted: Filter, tz: ZoneInfo, per_page: int = PER_PAGE
) -> tuple[list[Entry], bool]:
    """One page of entries, newest first, and whether an older page exists."""
    if has_control(wanted.user) or status_problem(wanted.status):
        return [], False
    query = (
        sa.select(provisioning_log)
        .where(provisioning_log.c.tenant_id == tenant_id, *wanted.conditions(tz))
        .order_by(provisioning_log.c.at.desc(), provisioning_log.c.id.desc())
        .offset((wanted.page - 1) * per_page)
        .limit(per_page + 1)
    )
    rows = (await conn.execute(query)).all()
    return [_entry(row) for row in rows[:per_page]], len(rows) > per_page


async def last_page(
    conn: AsyncConnection, tenant_id: UUID, wanted: Filter, tz: ZoneInfo, per_page: int = PER_PAGE
) -> int:
    """The number of the filter's last page (1 when nothing matches): counted only for a
    page asked for past the end."""
    if has_control(wanted.user) or status_problem(wanted.status):
        return 1
    query = sa.select(sa.func.count()).where(
        provisioning_log.c.tenant_id == tenant_id, *wanted.conditions(tz)
    )
    return max(1, -(-(await conn.execute(query)).scalar_one() // per_page))


async def find(conn: AsyncConnection, tenant_id: UUID, entry_id: int) -> Entry | None:
    query = sa.select(provisioning_log).where(
        provisioning_log.c.tenant_id == tenant_id, provisioning_log.c.id == entry_id
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _entry(row)


async def refusals(conn: AsyncConnection, tenant_id: UUID, since: datetime) -> int:
    """How many of the organization's SCIM requests since a time were refused (4xx, 5xx)."""
    query = sa.select(sa.func.count()).where(
        provisioning_log.c.tenant_id == tenant_id,
        provisioning_log.c.at >= since,
        # written out as the index that holds only them has it, so both planners use it
        provisioning_log.c.status >= sa.literal_column("400"),
    )
    return int((await conn.execute(query)).scalar_one())


async def purge(conn: AsyncConnection, at: datetime) -> int:
    """Delete every organization's entries older than its retention period, in batches of
    PURGE_BATCH (the caller commits between calls); how many went. 0: nothing is left to do."""
    deleted = 0
    for tenant_id, days in await conn.execute(
        sa.select(tenants.c.tenant_id, tenants.c.retention_days)
    ):
        old = sa.and_(
            provisioning_log.c.tenant_id == tenant_id,
            provisioning_log.c.at < at - timedelta(days=days),
        )
        batch = sa.select(provisioning_log.c.id).where(old).limit(PURGE_BATCH)
        result = await conn.execute(
            provisioning_log.delete().where(
                provisioning_log.c.tenant_id == tenant_id,
                provisioning_log.c.id.in_(batch.scalar_subquery()),
            )
        )
        deleted += result.rowcount
    return deleted
