"""The directory read: the organization's users as a plan sees them (streamed), who holds the
names and addresses one user's write needs, a user's id by username or address, the list the
CLI shows, and the users a file manages as the user list's download writes them (streamed)."""

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import FIELD_NAMES, REPEATING, key, shared
from roster.domain.plan import WRITABLE, Current
from roster.store.prepared import Connection, prepared
from roster.store.schema import users

CHUNK = 2000  # rows the driver hands over at a time


_CURRENT_COLUMNS = [
    users.c[name] for name in (*WRITABLE, "id", "managed_by", "version", "created_at", "removed_at")
]


async def load_current(
    conn: AsyncConnection,
    tenant_id: UUID,
    ids: Iterable[UUID] | None = None,
    *,
    for_update: bool = False,
) -> list[Current]:
    """The organization's users (removed ones still retained included), or those of `ids`.
    `for_update` locks the rows until the transaction ends, so a single-user write never
    races another."""
    if ids is None and not for_update:
        return [user async for part in current_users(conn, tenant_id) for user in part]
    query = sa.select(*_CURRENT_COLUMNS).where(users.c.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    if ids is None:
        return _as_current((await conn.execute(query)).all(), {})
    wanted = list(ids)
    found: list[Current] = []
    # A few users by id: one plain statement per 500, not a cursor (on PostgreSQL a
    # server-side one is three round trips, for a user or two).
    for start in range(0, len(wanted), 500):
        rows = await conn.execute(query.where(users.c.id.in_(wanted[start : start + 500])))
        found += _as_current(rows.all(), {})
    return found


_DIRECTORY = sa.select(*_CURRENT_COLUMNS).where(users.c.tenant_id == sa.bindparam("t"))


async def current_users(conn: AsyncConnection, tenant_id: UUID) -> AsyncIterator[list[Current]]:
    """The organization's users, removed ones still retained included, CHUNK at a time (read
    on the driver: `Prepared.parts`): the driver's rows and the users made of them never all
    exist at once."""
    canonical: dict[str, dict[Any, Any]] = {name: {} for name in REPEATING}
    async for part in prepared(_DIRECTORY).parts(conn, {"t": tenant_id}, CHUNK):
        yield _as_current(part, canonical)


def _as_current(partition: Sequence[Any], canonical: dict[str, dict[Any, Any]]) -> list[Current]:
    """Users of the directory's rows; equal values of a REPEATING field as one object."""
    width = len(WRITABLE)
    found = []
    if partition:
        columns = [
            shared(list(column), canonical[name]) if name in canonical else column
            for name, column in zip(WRITABLE, zip(*partition, strict=True), strict=False)
        ]
        for row, values in zip(partition, zip(*columns, strict=True), strict=True):
            user_id, managed_by, version, created_at, removed_at = row[width:]
            found.append(
                Current(
                    id=user_id,
                    values=dict(zip(WRITABLE, values, strict=True)),
                    managed_by=managed_by,
                    version=version,
                    created_at=created_at,
                    removed=removed_at is not None,
                )
            )
    return found


_TAKEN = sa.select(*_CURRENT_COLUMNS).where(
    users.c.tenant_id == sa.bindparam("t"),
    sa.or_(
        users.c.username_key == sa.bindparam("u"),
        sa.and_(users.c.email_key == sa.bindparam("e"), users.c.removed_at.is_(None)),
    ),
)


def current_of(row: dict[str, Any]) -> Current:
    """A user as the plan sees them, from their row (a mapping of at least _CURRENT_COLUMNS)."""
    return Current(
        id=row["id"],
        values={name: row[name] for name in WRITABLE},
        managed_by=row["managed_by"],
        version=row["version"],
        created_at=row["created_at"],
        removed=row["removed_at"] is not None,
    )


async def conflicts(
    conn: Connection, tenant_id: UUID, values: dict[str, Any], itself: UUID | None
) -> tuple[str | None, Current | None]:
    """For one user's write: which of "username" or "email" another present user already has
    (or None), and the retained, removed user with this username, whose identity a new user
    takes back."""
    username_key = key(values.get("username") or "")
    found = await prepared(_TAKEN).rows(
        conn, {"t": tenant_id, "u": username_key, "e": key(values.get("email") or "")}
    )
    returning = None
    for other in (current_of(row) for row in found if row["id"] != itself):
        same_username = other.username_key == username_key
        if other.removed:
            returning = other if same_username else returning
            continue
        return ("username" if same_username else "email"), None
    return None, returning


async def user_id_of(conn: AsyncConnection, tenant_id: UUID, username: str) -> UUID:
    """The id of the user, present or retained, with this username; LookupError when none."""
    query = sa.select(users.c.id).where(
        users.c.tenant_id == tenant_id, users.c.username_key == key(username)
    )
    found: UUID | None = (await conn.execute(query)).scalar_one_or_none()
    if found is None:
        raise LookupError(f"no user {username}")
    return found


async def user_id_by_email(conn: AsyncConnection, tenant_id: UUID, email: str) -> UUID | None:
    """The present (not removed) user with this e-mail address, if any."""
    query = sa.select(users.c.id).where(
        users.c.tenant_id == tenant_id,
        users.c.email_key == key(email),
        users.c.removed_at.is_(None),
    )
    found: UUID | None = (await conn.execute(query)).scalar_one_or_none()
    return found


async def list_users(conn: AsyncConnection, tenant_id: UUID) -> list[dict[str, Any]]:
    """Present users, in username order, as the CLI and APIs show them."""
    query = (
        sa.select(users.c.id, *[users.c[name] for name in WRITABLE], users.c.managed_by)
        .where(users.c.tenant_id == tenant_id, users.c.removed_at.is_(None))
        .order_by(users.c.username_key)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


_FILE_USERS = (
    sa.select(*[users.c[name] for name in FIELD_NAMES])
    .where(
        users.c.tenant_id == sa.bindparam("t"),
        users.c.removed_at.is_(None),
        users.c.managed_by != "scim",
    )
    .order_by(users.c.username_key)
)


def file_users(
    conn: AsyncConnection, tenant_id: UUID
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """The users a file manages (present, not managed by SCIM), in username order, each a
    tuple of the template's fields (in FIELD_NAMES order), CHUNK at a time through one cursor
    (`Prepared.parts`): never all in memory, and all of one moment of the directory however
    long the reader takes over them (a user renamed meanwhile is neither missed nor twice)."""
    return prepared(_FILE_USERS).parts(conn, {"t": tenant_id}, CHUNK)
