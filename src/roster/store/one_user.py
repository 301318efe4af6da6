"""One user at a time, as identity providers read and write them (SCIM): a present user by id or
by username, one locked for a write, a create, and the transactions such writes run in. The
statements are prepared (store.prepared): these are a SCIM client's most frequent requests.

    row = await by_username(reads, tenant_id, "JanJ")            # None: no present user
    created = await create(writes, tenant_id, addition, channel="scim", actor="scim token x")
    # Clash("username") / Clash("email"): another present user holds the value
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from roster.domain.fields import key
from roster.domain.plan import Addition, Current, Plan
from roster.store import directory, directory_reads
from roster.store.db import Clash, typed_clashes
from roster.store.directory import ConcurrentChange
from roster.store.prepared import (
    Connection,
    DirectReads,
    DirectTransaction,
    DirectWrites,
    Source,
    prepared,
)
from roster.store.schema import users

RESTORE_TRIES = 3  # creates racing to restore one returning user: the losers see it restored


_BY_ID = sa.select(users).where(
    users.c.tenant_id == sa.bindparam("tenant_id"),
    users.c.id == sa.bindparam("user_id"),
    users.c.removed_at.is_(None),
)
_BY_ID_LOCKED = _BY_ID.with_for_update()
_BY_USERNAME = sa.select(users).where(
    users.c.tenant_id == sa.bindparam("tenant_id"),
    users.c.username_key == sa.bindparam("username_key"),
    users.c.removed_at.is_(None),
)


async def by_id(source: Source, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    """A present user's row (every column), read on `source`: DirectReads outside any
    transaction, or a transaction's connection."""
    return await prepared(_BY_ID).first(source, {"tenant_id": tenant_id, "user_id": user_id})


async def locked(conn: Connection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    """A present user's row, locked until the transaction ends, so a write never races another
    (PostgreSQL; on SQLite the transaction already holds the write lock)."""
    return await prepared(_BY_ID_LOCKED).first(conn, {"tenant_id": tenant_id, "user_id": user_id})


async def by_username(reads: DirectReads, tenant_id: UUID, username: str) -> dict[str, Any] | None:
    """The present user with this username (compared by its key), if any."""
    sought = {"tenant_id": tenant_id, "username_key": key(username)}
    return await prepared(_BY_USERNAME).first(reads, sought)


@asynccontextmanager
async def transaction(writes: DirectWrites) -> AsyncIterator[DirectTransaction]:
    """A transaction of writes to one user on DirectWrites, whose unique-index refusals are
    raised as Clash. It takes no organization-wide lock (imports do): unique indexes and
    version-guarded writes keep concurrent writers honest."""
    with typed_clashes():
        async with writes.transaction() as conn:
            yield conn


async def check_unique(
    conn: Connection, tenant_id: UUID, values: dict[str, Any], itself: UUID | None
) -> Current | None:
    """Refuse a username or e-mail address another present user has (Clash naming it); the
    retained, removed user with this username, whose identity a new user takes back."""
    taken, returning = await directory_reads.conflicts(conn, tenant_id, values, itself)
    if taken is not None:
        raise Clash(taken)
    return returning


@dataclass(frozen=True, slots=True)
class Created:
    row: dict[str, Any]  # as stored
    restored: bool  # a returning user (removed, retained, username kept) taken back


async def create(
    writes: DirectWrites, tenant_id: UUID, addition: Addition, *, channel: str, actor: str
) -> Created:
    """Add a user (`addition.revive` None), or take back the returning one who keeps the
    username; Clash when another present user has the username or e-mail address. Most creates
    are new people: written straight away (directory.add_user), the unique indexes on username
    and e-mail standing guard, a query fewer. Only their refusal reads who holds the values."""
    try:
        with typed_clashes():
            row = await directory.add_user(
                writes, tenant_id, addition, channel=channel, actor=actor
            )
        return Created(row, restored=False)
    except Clash:
        pass  # a clash, or a returning user: told apart below
    for _ in range(RESTORE_TRIES):
        try:
            async with transaction(writes) as conn:
                returning = await check_unique(conn, tenant_id, addition.values, None)
                plan = Plan(added=[replace(addition, revive=returning)])
                (row,) = await directory.apply(
                    conn, tenant_id, plan, channel=channel, actor=actor, returning=True
                )
            return Created(row, restored=returning is not None)
        except ConcurrentChange:
            continue  # another create restored the user first: the next check sees it
    raise Clash("username")
