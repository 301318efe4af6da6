"""The import history: who imported what, when, through which channel, and how it went."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.issues import Problems, stored_total
from roster.store.clock import now
from roster.store.schema import audit_events, imports, tenants


class ImportStatus(StrEnum):
    """Where an import in the history stands: whether its changes are in effect."""

    APPLIED = "applied"  # its changes are in effect
    UNDONE = "undone"  # an undo took its changes back
    REJECTED = "rejected"  # nothing was changed: the file could not be imported
    HELD = "held"  # nothing was changed yet: it waits for an admin's approval
    APPROVED = "approved"  # a held import that was applied, as an import of its own
    DISCARDED = "discarded"  # a held import that will not be applied
    SKIPPED = "skipped"  # nothing was changed: the same file as the last pickup


@dataclass(frozen=True, slots=True)
class ImportRecord:
    id: UUID
    tenant_id: UUID
    created_at: datetime
    channel: str
    actor: str
    file_name: str | None
    mode: str
    status: ImportStatus
    counts: dict[str, int]
    report: dict[str, Any]

    @property
    def problems(self) -> Problems:
        """The problems the import kept, with how many it found in all."""
        return Problems.stored(self.report)

    @property
    def error_count(self) -> int:
        return stored_total(self.report, "error")

    @property
    def warning_count(self) -> int:
        return stored_total(self.report, "warning")


async def record(
    conn: AsyncConnection,
    *,
    import_id: UUID,
    tenant_id: UUID,
    channel: str,
    actor: str,
    file_name: str | None,
    mode: str,
    status: ImportStatus,
    counts: dict[str, int],
    report: dict[str, Any],
) -> None:
    at = now()
    await conn.execute(
        imports.insert().values(
            tenant_id=tenant_id,
            id=import_id,
            created_at=at,
            finished_at=at,
            channel=channel,
            actor=actor,
            file_name=file_name,
            mode=mode,
            status=status,
            counts=counts,
            report=report,
        )
    )


async def set_status(
    conn: AsyncConnection, tenant_id: UUID, import_id: UUID, status: ImportStatus
) -> None:
    await conn.execute(
        imports.update()
        .where(imports.c.tenant_id == tenant_id, imports.c.id == import_id)
        .values(status=status)
    )


async def decide(
    conn: AsyncConnection,
    record: ImportRecord,
    status: ImportStatus,
    *,
    by: str,
    applied_as: UUID | None = None,
    why: str | None = None,
) -> bool:
    """A held import approved or discarded: the status, and in its report who decided, when,
    why (a decision Roster made itself) and the import that applied it. False, and nothing
    written, when it is no longer held (another decision came first)."""
    decision = {"decided_by": by, "decided_at": now().isoformat(), "decided_why": why}
    if applied_as is not None:
        decision["applied_as"] = str(applied_as)
    result = await conn.execute(
        imports.update()
        .where(
            imports.c.tenant_id == record.tenant_id,
            imports.c.id == record.id,
            imports.c.status == ImportStatus.HELD,
        )
        .values(status=status, report={**record.report, **decision})
    )
    return result.rowcount == 1


async def removed_users(
    conn: AsyncConnection, tenant_id: UUID, import_id: UUID, limit: int
) -> list[dict[str, Any]]:
    """The first `limit` users an import removed, as they were (on its events' index)."""
    query = (
        sa.select(audit_events.c.user_id, audit_events.c.before)
        .where(
            audit_events.c.tenant_id == tenant_id,
            audit_events.c.import_id == import_id,
            audit_events.c.action == "removed",
        )
        .order_by(audit_events.c.id)
        .limit(limit)
    )
    return [{"id": r.user_id, **(r.before or {})} for r in await conn.execute(query)]


def _record(row: sa.Row[Any]) -> ImportRecord:
    m = row._mapping
    return ImportRecord(
        m["id"],
        m["tenant_id"],
        m["created_at"],
        m["channel"],
        m["actor"],
        m["file_name"],
        m["mode"],
        ImportStatus(m["status"]),
        m["counts"],
        m["report"],
    )


async def history(conn: AsyncConnection, tenant_id: UUID, limit: int = 100) -> list[ImportRecord]:
    query = (
        sa.select(imports)
        .where(imports.c.tenant_id == tenant_id)
        .order_by(imports.c.created_at.desc())
        .limit(limit)
    )
    return [_record(r) for r in await conn.execute(query)]


Key = tuple[datetime, UUID]  # where an import stands in the history's order


def key_of(record: ImportRecord) -> Key:
    return record.created_at, record.id


async def before(
    conn: AsyncConnection, tenant_id: UUID, after: Key | None, limit: int
) -> list[ImportRecord]:
    """Up to `limit` imports, newest first, from the one after `after` (the key of the last
    of the page before) on: a keyset page (`store.keyset.pages`) over (tenant_id, created_at)."""
    query = sa.select(imports).where(imports.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(sa.tuple_(imports.c.created_at, imports.c.id) < after)
    query = query.order_by(imports.c.created_at.desc(), imports.c.id.desc()).limit(limit)
    return [_record(r) for r in await conn.execute(query)]


async def find(conn: AsyncConnection, import_id: UUID) -> ImportRecord | None:
    row = (await conn.execute(sa.select(imports).where(imports.c.id == import_id))).first()
    return _record(row) if row else None


async def events(conn: AsyncConnection, tenant_id: UUID, import_id: UUID) -> list[dict[str, Any]]:
    query = sa.select(audit_events).where(
        audit_events.c.tenant_id == tenant_id, audit_events.c.import_id == import_id
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def held(conn: AsyncConnection, tenant_id: UUID, channel: str) -> list[ImportRecord]:
    """Imports of a channel waiting for an admin's approval, newest first."""
    query = (
        sa.select(imports)
        .where(
            imports.c.tenant_id == tenant_id,
            imports.c.channel == channel,
            imports.c.status == ImportStatus.HELD,
        )
        .order_by(imports.c.created_at.desc())
    )
    return [_record(r) for r in await conn.execute(query)]


# The condition of the index that holds only held imports, written out so that both databases'
# planners match it.
_IS_HELD = imports.c.status == sa.literal_column(f"'{ImportStatus.HELD.value}'")
# Every organization's held imports of one channel, counted through that index.
_HELD = (
    sa.select(tenants.c.slug, sa.func.count(imports.c.id))
    .select_from(
        tenants.outerjoin(
            imports,
            sa.and_(
                imports.c.tenant_id == tenants.c.tenant_id,
                _IS_HELD,
                imports.c.channel == sa.bindparam("channel"),
            ),
        )
    )
    .group_by(tenants.c.slug)
)


async def waiting(conn: AsyncConnection, channel: str, at: datetime) -> list[ImportRecord]:
    """Every organization's held imports of a channel since a time, oldest first (on the index
    that holds only held imports)."""
    query = (
        sa.select(imports)
        .where(_IS_HELD, imports.c.channel == channel, imports.c.created_at >= at)
        .order_by(imports.c.created_at)
    )
    return [_record(r) for r in await conn.execute(query)]


async def since(
    conn: AsyncConnection, tenant_id: UUID, at: datetime, status: ImportStatus
) -> list[ImportRecord]:
    """One organization's imports of a status since a time, oldest first."""
    query = (
        sa.select(imports)
        .where(
            imports.c.tenant_id == tenant_id,
            imports.c.created_at >= at,
            imports.c.status == status,
        )
        .order_by(imports.c.created_at)
    )
    return [_record(r) for r in await conn.execute(query)]


async def held_by_organization(conn: AsyncConnection, channel: str) -> dict[str, int]:
    """How many imports of a channel wait for an admin's approval in each organization (by
    slug; 0 for none): across organizations, for /metrics."""
    return {slug: count for slug, count in await conn.execute(_HELD, {"channel": channel})}
