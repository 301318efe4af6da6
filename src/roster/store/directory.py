"""The directory: read users, and apply a Plan. The one place that writes users, writes audit
events and revokes sessions, for every channel."""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import key
from roster.domain.plan import WRITABLE, Current, Plan
from roster.store.schema import audit_events, sessions, tenants, users

CHUNK = 2000
Progress = Callable[[int, int], None]  # (done, total)


class ConcurrentChange(Exception):
    """A user changed between reading the directory and writing the plan."""


def now() -> datetime:
    return datetime.now(UTC)


def _current(row: sa.Row[Any]) -> Current:
    mapping = row._mapping
    return Current(
        id=mapping["id"],
        values={name: mapping[name] for name in WRITABLE},
        managed_by=mapping["managed_by"],
        version=mapping["version"],
        created_at=mapping["created_at"],
        removed=mapping["removed_at"] is not None,
    )


_CURRENT_COLUMNS = [
    users.c[name] for name in (*WRITABLE, "id", "managed_by", "version", "created_at", "removed_at")
]


async def load_current(
    conn: AsyncConnection, tenant_id: UUID, ids: Iterable[UUID] | None = None
) -> list[Current]:
    """The organization's users, removed ones still retained included."""
    query = sa.select(*_CURRENT_COLUMNS).where(users.c.tenant_id == tenant_id)
    if ids is None:
        return [_current(row) for row in await conn.execute(query)]
    found: list[Current] = []
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        found += [_current(r) for r in await conn.execute(query.where(users.c.id.in_(batch)))]
    return found


async def list_users(conn: AsyncConnection, tenant_id: UUID) -> list[dict[str, Any]]:
    """Present users, in username order, as the CLI and APIs show them."""
    query = (
        sa.select(users.c.id, *[users.c[name] for name in WRITABLE], users.c.managed_by)
        .where(users.c.tenant_id == tenant_id, users.c.removed_at.is_(None))
        .order_by(users.c.username_key)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: values[name] for name in WRITABLE},
        "username_key": key(values["username"]),
        "email_key": key(values["email"]),
    }


async def _execute_many(
    conn: AsyncConnection,
    statement: Any,
    rows: Sequence[dict[str, Any]],
    step: Callable[[int], None],
    expect_rowcount: bool = False,
) -> None:
    for start in range(0, len(rows), CHUNK):
        batch = rows[start : start + CHUNK]
        result = await conn.execute(statement, list(batch))
        if expect_rowcount and result.rowcount != len(batch):
            raise ConcurrentChange("a user changed while the import was being applied")
        step(len(batch))


def _by_id_and_version() -> Any:
    return sa.and_(
        users.c.tenant_id == sa.bindparam("t"),
        users.c.id == sa.bindparam("uid"),
        users.c.version == sa.bindparam("v"),
    )


async def apply(
    conn: AsyncConnection,
    tenant_id: UUID,
    plan: Plan,
    *,
    channel: str,
    actor: str,
    import_id: UUID | None = None,
    progress: Progress | None = None,
) -> None:
    """Write a plan inside the caller's transaction: users, audit events, session revocation.

    Every write is guarded by the version the plan was computed from: a user changed meanwhile
    raises ConcurrentChange and the caller's transaction rolls back whole.
    """
    at = now()
    total = 2 * plan.changes
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    audit: list[dict[str, Any]] = []

    def event(action: str, user_id: UUID, version: int, before: Any, after: Any) -> None:
        audit.append(
            {
                "tenant_id": tenant_id,
                "id": uuid4(),
                "at": at,
                "channel": channel,
                "actor": actor,
                "action": action,
                "user_id": user_id,
                "import_id": import_id,
                "user_version": version,
                "before": before,
                "after": after,
            }
        )

    # Removals first, then updates, then additions: an e-mail address freed by one is free
    # for the next.
    removals = [{"t": tenant_id, "uid": r.user.id, "v": r.user.version} for r in plan.removed]
    await _execute_many(
        conn,
        users.update()
        .where(_by_id_and_version())
        .values(removed_at=at, updated_at=at, version=users.c.version + 1),
        removals,
        step,
        expect_rowcount=True,
    )
    for r in plan.removed:
        event("removed", r.user.id, r.user.version + 1, r.user.values, None)

    rewrites: list[dict[str, Any]] = []
    for u in plan.updated:
        rewrites.append(
            {
                "t": tenant_id,
                "uid": u.user.id,
                "v": u.user.version,
                **_stored(u.values),
                "managed_by": u.user.managed_by,
            }
        )
        event(
            "updated",
            u.user.id,
            u.user.version + 1,
            {name: old for name, (old, _) in u.changes.items()},
            {name: new for name, (_, new) in u.changes.items()},
        )
    for a in plan.added:
        if a.revive is not None:
            rewrites.append(
                {
                    "t": tenant_id,
                    "uid": a.revive.id,
                    "v": a.revive.version,
                    **_stored(a.values),
                    "managed_by": a.managed_by or channel,
                }
            )
            event("restored", a.revive.id, a.revive.version + 1, None, a.values)
    # Users swapping e-mail addresses would collide mid-statement: park theirs first.
    parked = [
        {"t": tenant_id, "uid": u.user.id, "v": u.user.version, "parked": f"~{u.user.id.hex}"}
        for u in plan.updated
        if "email" in u.changes
    ]
    if parked:
        await conn.execute(
            users.update().where(_by_id_and_version()).values(email_key=sa.bindparam("parked")),
            parked,
        )
    await _execute_many(
        conn,
        # The SET clause also takes every column named in the rows: the whole user is rewritten.
        users.update()
        .where(_by_id_and_version())
        .values(removed_at=None, updated_at=at, version=users.c.version + 1),
        rewrites,
        step,
        expect_rowcount=True,
    )

    inserts: list[dict[str, Any]] = []
    for a in plan.added:
        if a.revive is None:
            user_id = uuid4()
            inserts.append(
                {
                    "tenant_id": tenant_id,
                    "id": user_id,
                    **_stored(a.values),
                    "managed_by": a.managed_by or channel,
                    "created_at": at,
                    "updated_at": at,
                    "version": 1,
                    "removed_at": None,
                }
            )
            event("added", user_id, 1, None, a.values)
    await _execute_many(conn, users.insert(), inserts, step)

    await _execute_many(conn, audit_events.insert(), audit, step)
    ended = [r.user.id for r in plan.removed]
    ended += [u.user.id for u in plan.updated if u.ends_access]
    await revoke_sessions(conn, tenant_id, ended, at)


async def revoke_sessions(
    conn: AsyncConnection, tenant_id: UUID, user_ids: Sequence[UUID], at: datetime | None = None
) -> None:
    """End every open session of these users at once."""
    statement = (
        sessions.update()
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.user_id == sa.bindparam("uid"),
            sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=at or now())
    )
    for start in range(0, len(user_ids), CHUNK):
        await conn.execute(statement, [{"uid": uid} for uid in user_ids[start : start + CHUNK]])


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
        await conn.execute(
            audit_events.insert(),
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid4(),
                    "at": at,
                    "channel": "cli",
                    "actor": "retention",
                    "action": "purged",
                    "user_id": uid,
                    "import_id": None,
                    "user_version": None,
                    "before": {"username": name},
                    "after": None,
                }
                for uid, name in gone
            ],
        )
        purged += len(gone)
    return purged
