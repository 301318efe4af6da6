"""Groups of users (SCIM Groups): names, members, audit events."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.domain.fields import key
from roster.store.clock import now
from roster.store.db import Clash, typed_clashes, writing
from roster.store.directory import CHUNK, audit_event, record_events
from roster.store.schema import group_members, groups, users

NAMED = 5  # unknown members a refusal names; it counts the rest


class GroupError(Exception):
    """A group the directory cannot hold (a member who is no present user of the organization);
    `code` is the SCIM error type that says so."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Group:
    id: UUID
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    members: list[tuple[UUID, str]] = field(default_factory=list)  # (user id, display name)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One writing transaction of changes to groups, whose unique-index refusals are raised as
    Clash. It takes no organization-wide lock (imports do): the unique index on the name and
    the lock on the group being changed keep concurrent writers honest."""
    with typed_clashes():
        async with writing(engine) as conn:
            yield conn


async def find(
    conn: AsyncConnection, tenant_id: UUID, group_id: UUID, *, for_update: bool = False
) -> Group | None:
    """The group, with its present members; `for_update` locks it until the transaction ends."""
    query = sa.select(groups).where(groups.c.tenant_id == tenant_id, groups.c.id == group_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        return None
    group = Group(
        row.id, row.display_name, row.external_id, row.created_at, row.updated_at, row.version
    )
    group.members = await _members(conn, tenant_id, group_id)
    return group


async def _members(
    conn: AsyncConnection, tenant_id: UUID, group_id: UUID
) -> list[tuple[UUID, str]]:
    query = (
        sa.select(users.c.id, users.c.display_name)
        .join(
            group_members,
            sa.and_(
                group_members.c.tenant_id == users.c.tenant_id,
                group_members.c.user_id == users.c.id,
            ),
        )
        .where(
            group_members.c.tenant_id == tenant_id,
            group_members.c.group_id == group_id,
            users.c.removed_at.is_(None),  # removed users are gone from their groups too
        )
        .order_by(users.c.display_name)
    )
    return [(r.id, r.display_name) for r in await conn.execute(query)]


async def ids_where(
    conn: AsyncConnection, tenant_id: UUID, condition: Any, offset: int, limit: int
) -> tuple[int, list[UUID]]:
    """Matching groups: how many in all, and one page of their ids."""
    where = sa.and_(groups.c.tenant_id == tenant_id, condition)
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(groups).where(where))
    ).scalar_one()
    page = await conn.execute(
        sa.select(groups.c.id)
        .where(where)
        .order_by(groups.c.created_at, groups.c.id)
        .offset(offset)
        .limit(limit)
    )
    return total, list(page.scalars())


def _batches(ids: set[UUID]) -> Iterator[list[UUID]]:
    """Ids a chunk at a time: one statement's bound values stay under the drivers' limits."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


async def _check_members(conn: AsyncConnection, tenant_id: UUID, member_ids: set[UUID]) -> None:
    found: set[UUID] = set()
    for batch in _batches(member_ids):
        query = sa.select(users.c.id).where(
            users.c.tenant_id == tenant_id, users.c.id.in_(batch), users.c.removed_at.is_(None)
        )
        found.update((await conn.execute(query)).scalars())
    missing = sorted(str(m) for m in member_ids - found)
    if missing:
        more = f" and {len(missing) - NAMED:,} more" if len(missing) > NAMED else ""
        raise GroupError(
            f"members: no user {', '.join(missing[:NAMED])}{more} in this organization",
            "invalidValue",
        )


async def _check_name(
    conn: AsyncConnection, tenant_id: UUID, display_name: str, itself: UUID | None
) -> None:
    taken = (
        await conn.execute(
            sa.select(groups.c.id).where(
                groups.c.tenant_id == tenant_id, groups.c.display_name_key == key(display_name)
            )
        )
    ).scalar_one_or_none()
    if taken is not None and taken != itself:
        raise Clash("display_name")


async def _audit(
    conn: AsyncConnection, tenant_id: UUID, actor: str, action: str, before: Any, after: Any
) -> None:
    await record_events(
        conn, [audit_event(tenant_id, now(), "scim", actor, action, before=before, after=after)]
    )


def _summary(name: str, external_id: str | None, members: set[UUID]) -> dict[str, Any]:
    return {"group": name, "external_id": external_id, "members": sorted(str(m) for m in members)}


async def create(
    conn: AsyncConnection,
    tenant_id: UUID,
    actor: str,
    display_name: str,
    external_id: str | None,
    member_ids: set[UUID],
) -> UUID:
    await _check_name(conn, tenant_id, display_name, None)
    await _check_members(conn, tenant_id, member_ids)
    group_id, at = uuid4(), now()
    await conn.execute(
        groups.insert().values(
            tenant_id=tenant_id,
            id=group_id,
            display_name=display_name,
            display_name_key=key(display_name),
            external_id=external_id,
            created_at=at,
            updated_at=at,
            version=1,
        )
    )
    await _add_members(conn, tenant_id, group_id, member_ids)
    await _audit(
        conn, tenant_id, actor, "group_added", None, _summary(display_name, external_id, member_ids)
    )
    return group_id


async def _add_members(
    conn: AsyncConnection, tenant_id: UUID, group_id: UUID, member_ids: set[UUID]
) -> None:
    if member_ids:
        await conn.execute(
            group_members.insert(),
            [{"tenant_id": tenant_id, "group_id": group_id, "user_id": m} for m in member_ids],
        )


async def replace(
    conn: AsyncConnection,
    tenant_id: UUID,
    actor: str,
    group: Group,
    display_name: str,
    external_id: str | None,
    member_ids: set[UUID],
) -> None:
    """Set a group's name and members; a no-op writes nothing."""
    before = {m for m, _ in group.members}
    if (display_name, external_id, member_ids) == (group.display_name, group.external_id, before):
        return
    await _check_name(conn, tenant_id, display_name, group.id)
    await _check_members(conn, tenant_id, member_ids - before)
    await conn.execute(
        groups.update()
        .where(groups.c.tenant_id == tenant_id, groups.c.id == group.id)
        .values(
            display_name=display_name,
            display_name_key=key(display_name),
            external_id=external_id,
            updated_at=now(),
            version=groups.c.version + 1,
        )
    )
    gone = before - member_ids
    for batch in _batches(gone):
        await conn.execute(
            group_members.delete().where(
                group_members.c.tenant_id == tenant_id,
                group_members.c.group_id == group.id,
                group_members.c.user_id.in_(batch),
            )
        )
    await _add_members(conn, tenant_id, group.id, member_ids - before)
    await _audit(
        conn,
        tenant_id,
        actor,
        "group_updated",
        _summary(group.display_name, group.external_id, before),
        _summary(display_name, external_id, member_ids),
    )


async def delete(conn: AsyncConnection, tenant_id: UUID, actor: str, group: Group) -> None:
    await conn.execute(
        groups.delete().where(groups.c.tenant_id == tenant_id, groups.c.id == group.id)
    )
    members = {m for m, _ in group.members}
    await _audit(
        conn,
        tenant_id,
        actor,
        "group_removed",
        _summary(group.display_name, group.external_id, members),
        None,
    )
