"""The directory's writes: apply a Plan, add one user. The one place that writes users, writes
audit events and revokes sessions, for every channel (reads: store/directory_reads.py)."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import cache
from itertools import chain, islice
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.collation import shared_sort_key, sort_key
from roster.domain.fields import key
from roster.domain.plan import WRITABLE, Addition, Current, Plan
from roster.store.bulk_load import copy_rows
from roster.store.clock import now
from roster.store.db import unique_clash
from roster.store.ids import time_ordered_id
from roster.store.prepared import Connection, DirectWrites, bulk, prepared
from roster.store.schema import audit_events, group_members, sessions, tenants, users

CHUNK = 2000
SMALL = 50  # fewer rows than this are inserted by a plain INSERT, not COPY
Progress = Callable[[int, int], None]  # (done, total)
Step = Callable[[int], None]


class ConcurrentChange(Exception):
    """A user changed between reading the directory and writing the plan."""


# What a plan's write may meet when another writer got there first (see lost_to_another_writer).
LOST_TO_ANOTHER_WRITER = (ConcurrentChange, sa.exc.IntegrityError)


def lost_to_another_writer(error: BaseException) -> bool:
    """A user changed since the plan read it (a version guard matched nothing), or a unique
    value was taken meanwhile; any other constraint's refusal is a fault, not a race."""
    return isinstance(error, ConcurrentChange) or unique_clash(error)


SEARCHED = ("username", "first_name", "surname", "display_name", "email", "department")


def search_text(values: dict[str, Any]) -> str:
    """What the console's search looks in: the searched fields casefolded, in one column, so a
    search is one LIKE over one column rather than six over lower()ed ones."""
    return " ".join((values.get(name) or "") for name in SEARCHED).casefold()


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: values[name] for name in WRITABLE},
        "username_key": key(values["username"]),
        "email_key": key(values["email"]),
        "search_text": search_text(values),
        "display_name_sort_key": sort_key(values["display_name"]),
        "department_sort_key": shared_sort_key(values["department"]),
    }


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


async def _update_many(
    conn: Connection,
    statement: Any,
    rows: Iterable[dict[str, Any]],
    step: Step,
    written: list[dict[str, Any]] | None = None,
) -> None:
    """Version-guarded updates, chunk by chunk: a row that matches nothing was changed by
    someone else since the plan was made. With `written`, one statement a user instead, each
    giving the row as it now is (UPDATE ... RETURNING): for writes of a user or two."""
    if written is not None:  # the statement ends in RETURNING
        for row in rows:
            found = await prepared(statement).first(conn, row)
            if found is None:
                raise ConcurrentChange("a user changed while the plan was being applied")
            written.append(found)
            step(1)
        return
    for chunk in _chunks(rows):
        if await _per_row(conn, statement, chunk) != len(chunk):
            raise ConcurrentChange("a user changed while the plan was being applied")
        step(len(chunk))


async def _per_row(conn: Connection, statement: Any, rows: list[dict[str, Any]]) -> int:
    """Run a module-level statement once for each row; how many rows it touched. One row is
    one prepared execution (DirectWrites take no other), more are one executemany on the
    driver (`Prepared.many`; on PostgreSQL `run_each`, as asyncpg's executemany counts no
    rows)."""
    if len(rows) == 1:
        return await prepared(statement).run(conn, rows[0])
    if conn.dialect.name == "postgresql":
        return await prepared(statement).run_each(bulk(conn), rows)
    return await prepared(statement).many(bulk(conn), rows)


@cache
def _insert(table: sa.Table) -> Any:
    return table.insert()


@cache
def _insert_returning(table: sa.Table) -> Any:
    return table.insert().returning(*table.c, sort_by_parameter_order=True)


async def _insert_many(
    conn: Connection,
    table: sa.Table,
    rows: Iterable[dict[str, Any]],
    step: Step,
    written: list[dict[str, Any]] | None = None,
) -> None:
    """Bulk insert in the caller's transaction: COPY on PostgreSQL, executemany elsewhere and
    for fewer than SMALL rows (COPY's extra round trips cost more than it saves there). With
    `written`, a plain INSERT ... RETURNING that adds the rows as stored to it."""
    iterator = iter(rows)
    head = list(islice(iterator, SMALL))
    if not head:
        return
    if written is not None or len(head) < SMALL or conn.dialect.name != "postgresql":
        for chunk in _chunks(chain(head, iterator)):
            if written is not None:  # a user or two, each as stored
                for row in chunk:
                    written += await prepared(_insert_returning(table)).rows(conn, row)
            else:
                await _per_row(conn, _insert(table), chunk)
            step(len(chunk))
        return
    names = list(head[0])  # columns left out take their defaults
    await copy_rows(bulk(conn), table, names, chain(head, iterator), step, CHUNK)


def audit_event(
    tenant_id: UUID,
    at: datetime,
    channel: str,
    actor: str,
    action: str,
    *,
    user_id: UUID | None = None,
    import_id: UUID | None = None,
    user_version: int | None = None,
    before: Any = None,
    after: Any = None,
) -> dict[str, Any]:
    """One row of the audit trail: when, which organization, what, through which channel,
    who, and the values before and after."""
    return {
        "tenant_id": tenant_id,
        "id": time_ordered_id(),
        "at": at,
        "channel": channel,
        "actor": actor,
        "action": action,
        "user_id": user_id,
        "import_id": import_id,
        "user_version": user_version,
        "before": before,
        "after": after,
    }


async def record_events(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
    """Write audit events (see audit_event): the one place that does."""
    await _insert_many(conn, audit_events, events, lambda count: None)


# Built once (building a statement costs more than running it here), every value bound per
# row: "t" organization, "uid" user, "v" the version the plan was made from, "at" the time.
_BY_ID_AND_VERSION = sa.and_(
    users.c.tenant_id == sa.bindparam("t"),
    users.c.id == sa.bindparam("uid"),
    users.c.version == sa.bindparam("v"),
)
_REMOVE = (
    users.update()
    .where(_BY_ID_AND_VERSION)
    .values(
        removed_at=sa.bindparam("at"), updated_at=sa.bindparam("at"), version=users.c.version + 1
    )
)
# The SET clause also takes every column named in the rows: the whole user is rewritten.
_REWRITE = (
    users.update()
    .where(_BY_ID_AND_VERSION)
    .values(removed_at=None, updated_at=sa.bindparam("at"), version=users.c.version + 1)
)
_REWRITE_RETURNING = _REWRITE.returning(*users.c)


def _new_user(
    tenant_id: UUID, user_id: UUID, addition: Addition, channel: str, at: datetime
) -> dict[str, Any]:
    """The row of a user an addition creates."""
    return {
        "tenant_id": tenant_id,
        "id": user_id,
        **_stored(addition.values),
        "managed_by": addition.managed_by or channel,
        "created_at": at,
        "updated_at": at,
        "version": 1,
        "removed_at": None,
    }


def _prefixed(table: sa.Table, prefix: str) -> dict[str, Any]:
    return {column.key: sa.bindparam(prefix + column.key, type_=column.type) for column in table.c}


# A new user and its audit event in one statement (PostgreSQL): both rows or neither.
_ADD_USER = sa.select(
    users.insert().values(_prefixed(users, "u_")).returning(*users.c).cte("added_user")
).add_cte(audit_events.insert().values(_prefixed(audit_events, "e_")).cte("added_event"))


async def add_user(
    writes: DirectWrites, tenant_id: UUID, addition: Addition, *, channel: str, actor: str
) -> dict[str, Any]:
    """Apply a plan of one new user (`addition.revive` None) on DirectWrites, as `apply` would:
    the user's row and its audit event; the row as stored. On PostgreSQL one statement (a
    data-modifying WITH) that commits on its own: one round trip, where BEGIN, two INSERTs and
    COMMIT took four. SQLite's WITH cannot write: there `apply` runs in a transaction."""
    if addition.revive is not None:
        raise ValueError("a returning user takes apply's revive path")
    if not writes.single_statements:
        async with writes.transaction() as tx:
            plan = Plan(added=[addition])
            (row,) = await apply(tx, tenant_id, plan, channel=channel, actor=actor, returning=True)
        return row
    at, user_id = now(), time_ordered_id()
    user = _new_user(tenant_id, user_id, addition, channel, at)
    event = audit_event(
        tenant_id, at, channel, actor, "added", user_id=user_id, user_version=1,
        after=addition.values,
    )  # fmt: skip
    values = {f"u_{name}": value for name, value in user.items()}
    values |= {f"e_{name}": value for name, value in event.items()}
    async with writes.statement() as conn:
        (stored,) = await prepared(_ADD_USER).rows(conn, values)
    return stored


async def apply(
    conn: Connection,
    tenant_id: UUID,
    plan: Plan,
    *,
    channel: str,
    actor: str,
    import_id: UUID | None = None,
    progress: Progress | None = None,
    returning: bool = False,
) -> list[dict[str, Any]]:
    """Write a plan inside the caller's transaction: users, audit events, session revocation.

    Every write is guarded by the version the plan was computed from: a user changed meanwhile
    raises ConcurrentChange and the caller's transaction rolls back whole. Rows are built chunk
    by chunk as they are written, so a 100,000-user import never holds them all at once.
    With `returning` (a plan of a few users, as SCIM writes), the added, restored and updated
    users' rows as stored are returned, read by the writes themselves (RETURNING).
    """
    written: list[dict[str, Any]] | None = [] if returning else None
    at = now()
    total = 2 * plan.changes
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    def event(action: str, user_id: UUID, version: int, before: Any, after: Any) -> dict[str, Any]:
        return audit_event(
            tenant_id,
            at,
            channel,
            actor,
            action,
            user_id=user_id,
            import_id=import_id,
            user_version=version,
            before=before,
            after=after,
        )

    def rewrite(user: Current, values: dict[str, Any], managed_by: str) -> dict[str, Any]:
        return {
            "t": tenant_id,
            "uid": user.id,
            "v": user.version,
            "at": at,
            **_stored(values),
            "managed_by": managed_by,
        }

    # Removals first, then updates, then additions: an e-mail address freed by one is free
    # for the next.
    await _update_many(
        conn,
        _REMOVE,
        ({"t": tenant_id, "uid": r.user.id, "v": r.user.version, "at": at} for r in plan.removed),
        step,
    )
    await _insert_many(
        conn,
        audit_events,
        (
            event("removed", r.user.id, r.user.version + 1, r.user.values, None)
            for r in plan.removed
        ),
        step,
    )

    revived = [a for a in plan.added if a.revive is not None]
    await _update_many(
        conn,
        _REWRITE if written is None else _REWRITE_RETURNING,
        chain(
            (rewrite(u.user, u.values, u.user.managed_by) for u in plan.updated),
            (rewrite(a.revive, a.values, a.managed_by or channel) for a in revived if a.revive),
        ),
        step,
        written,
    )
    await _insert_many(
        conn,
        audit_events,
        chain(
            (
                event(
                    "updated",
                    u.user.id,
                    u.user.version + 1,
                    {name: old for name, (old, _) in u.changes.items()},
                    {name: new for name, (_, new) in u.changes.items()},
                )
                for u in plan.updated
            ),
            (
                event("restored", a.revive.id, a.revive.version + 1, None, a.values)
                for a in revived
                if a.revive
            ),
        ),
        step,
    )

    created = [(time_ordered_id(), a) for a in plan.added if a.revive is None]
    await _insert_many(
        conn,
        users,
        (_new_user(tenant_id, user_id, a, channel, at) for user_id, a in created),
        step,
        written,
    )
    await _insert_many(
        conn,
        audit_events,
        (event("added", user_id, 1, None, a.values) for user_id, a in created),
        step,
    )
    for chunk in _chunks({"t": tenant_id, "uid": r.user.id} for r in plan.removed):
        await _per_row(conn, _LEAVE_GROUPS, chunk)  # a returning user starts in no group
    ended = [r.user.id for r in plan.removed]
    ended += [u.user.id for u in plan.updated if u.ends_access]
    await revoke_sessions(conn, tenant_id, ended, at)
    return written or []


_LEAVE_GROUPS = group_members.delete().where(
    group_members.c.tenant_id == sa.bindparam("t"), group_members.c.user_id == sa.bindparam("uid")
)
_REVOKE = (
    sessions.update()
    .where(
        sessions.c.tenant_id == sa.bindparam("t"),
        sessions.c.user_id == sa.bindparam("uid"),
        sessions.c.revoked_at.is_(None),
    )
    .values(revoked_at=sa.bindparam("at"))
)


async def revoke_sessions(
    conn: Connection, tenant_id: UUID, user_ids: Sequence[UUID], at: datetime | None = None
) -> None:
    """End every open session of these users at once."""
    at = at or now()
    for start in range(0, len(user_ids), CHUNK):
        rows = [{"t": tenant_id, "uid": uid, "at": at} for uid in user_ids[start : start + CHUNK]]
        await _per_row(conn, _REVOKE, rows)


async def purge_removed(conn: AsyncConnection, at: datetime | None = None) -> int:
    """Delete removed users whose retention period has passed. Returns how many."""
    at = at or now()
    purged = 0
    for tenant_id, days in await conn.execute(
        sa.select(tenants.c.tenant_id, tenants.c.retention_days)
    ):
        cutoff = at - timedelta(days=days)
        gone = (
            await conn.execute(
                sa.select(users.c.id, users.c.username).where(
                    users.c.tenant_id == tenant_id, users.c.removed_at < cutoff
                )
            )
        ).all()
        if not gone:
            continue
        await conn.execute(
            users.delete().where(users.c.tenant_id == tenant_id, users.c.removed_at < cutoff)
        )
        await record_events(
            conn,
            [
                audit_event(
                    tenant_id,
                    at,
                    "cli",
                    "retention",
                    "purged",
                    user_id=uid,
                    before={"username": name},
                )
                for uid, name in gone
            ],
        )
        purged += len(gone)
    return purged
