"""Admins' sign-in credentials: a password (argon2), an optional TOTP secret, and the count of
failed attempts that locks an account for a while."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import key
from roster.domain.plan import Current
from roster.store.clock import now
from roster.store.directory import audit_event, record_events
from roster.store.prepared import Connection, prepared
from roster.store.schema import admin_credentials, tenants, users

log = logging.getLogger("roster.admins")

LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Admin:
    tenant_id: UUID
    user_id: UUID
    username: str
    display_name: str
    email: str
    role: str
    password_hash: str
    totp_secret: str | None
    failed_logins: int
    locked_until: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def locked(self, at: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > at


_WITH_USER = admin_credentials.join(
    users,
    (users.c.tenant_id == admin_credentials.c.tenant_id)
    & (users.c.id == admin_credentials.c.user_id),
)
_SELECT = sa.select(
    admin_credentials,
    users.c.username,
    users.c.display_name,
    users.c.email,
    users.c.role,
).select_from(_WITH_USER)


def _admin(row: sa.Row[Any]) -> Admin:
    return Admin(**{k: row._mapping[k] for k in Admin.__dataclass_fields__})


def _present(query: sa.Select[Any]) -> sa.Select[Any]:
    return query.where(users.c.removed_at.is_(None), users.c.active.is_(True))


async def addresses(conn: AsyncConnection, tenant_id: UUID) -> list[str]:
    """The e-mail addresses of the organization's admins who can sign in."""
    query = _present(
        sa.select(users.c.email)
        .select_from(_WITH_USER)
        .where(admin_credentials.c.tenant_id == tenant_id, users.c.role == "admin")
    ).order_by(users.c.email)
    return [email for (email,) in await conn.execute(query)]


async def by_email(conn: AsyncConnection, tenant_id: UUID, email: str) -> Admin | None:
    query = _SELECT.where(
        admin_credentials.c.tenant_id == tenant_id, users.c.email_key == key(email)
    )
    row = (await conn.execute(_present(query))).first()
    return _admin(row) if row else None


async def get(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> Admin | None:
    query = _SELECT.where(
        admin_credentials.c.tenant_id == tenant_id, admin_credentials.c.user_id == user_id
    )
    row = (await conn.execute(_present(query))).first()
    return _admin(row) if row else None


async def set_password(
    conn: AsyncConnection, tenant_id: UUID, user_id: UUID, password_hash: str
) -> None:
    where = (admin_credentials.c.tenant_id == tenant_id) & (admin_credentials.c.user_id == user_id)
    updated = await conn.execute(
        admin_credentials.update()
        .where(where)
        .values(password_hash=password_hash, failed_logins=0, locked_until=None)
    )
    if updated.rowcount == 0:
        await conn.execute(
            admin_credentials.insert().values(
                tenant_id=tenant_id,
                user_id=user_id,
                password_hash=password_hash,
                created_at=now(),
            )
        )


async def _update(
    conn: AsyncConnection, admin: Admin, *only_if: sa.ColumnElement[bool], **values: Any
) -> bool:
    """Change the admin's credentials (where `only_if` holds); whether a row changed."""
    changed = await conn.execute(
        admin_credentials.update()
        .where(
            admin_credentials.c.tenant_id == admin.tenant_id,
            admin_credentials.c.user_id == admin.user_id,
            *only_if,
        )
        .values(**values)
    )
    return changed.rowcount == 1


async def failed(conn: AsyncConnection, admin: Admin) -> None:
    """Count a wrong password or code; the fifth in a row locks the account for a while. One
    statement, so concurrent failures all count, and a locked account's failures change
    nothing (they would otherwise end the lock)."""
    at = now()
    after = admin_credentials.c.failed_logins + 1
    await _update(
        conn,
        admin,
        sa.or_(admin_credentials.c.locked_until.is_(None), admin_credentials.c.locked_until <= at),
        failed_logins=sa.case((after >= LOCK_AFTER, 0), else_=after),
        locked_until=sa.case((after >= LOCK_AFTER, at + LOCK_FOR), else_=None),
    )


async def succeeded(conn: AsyncConnection, admin: Admin) -> None:
    await _update(conn, admin, failed_logins=0, locked_until=None)


async def set_totp(
    conn: AsyncConnection,
    admin: Admin,
    secret: str | None,
    *,
    channel: str,
    actor: str,
    used_step: int | None = None,
) -> None:
    """Turn two-step sign-in on with this key (`used_step`: the time step of the code that
    confirmed it, which cannot sign in again) or, with None, off; recorded in the audit trail."""
    await _update(conn, admin, totp_secret=secret, totp_last_step=used_step)
    event = audit_event(
        admin.tenant_id, now(), channel, actor, "two_step_on" if secret else "two_step_off",
        user_id=admin.user_id, before={"two_step": admin.totp_secret is not None},
        after={"two_step": secret is not None},
    )  # fmt: skip
    await record_events(conn, [event])


async def used_totp_step(conn: AsyncConnection, admin: Admin, step: int) -> bool:
    """Take a code's time step; False when it (or a later one) was already used, so a code
    seen over someone's shoulder cannot sign in a second time."""
    last = admin_credentials.c.totp_last_step
    return await _update(conn, admin, sa.or_(last.is_(None), last < step), totp_last_step=step)


# Admins besides one user who can still sign in to the console (see `others`).
_OTHERS = (
    sa.select(sa.func.count().label("n"))
    .select_from(
        admin_credentials.join(
            users,
            (users.c.tenant_id == admin_credentials.c.tenant_id)
            & (users.c.id == admin_credentials.c.user_id),
        )
    )
    .where(
        admin_credentials.c.tenant_id == sa.bindparam("t"),
        admin_credentials.c.user_id != sa.bindparam("u"),
        users.c.role == "admin",
        users.c.removed_at.is_(None),
        users.c.active.is_(True),
    )
)


async def others(conn: Connection, tenant_id: UUID, user_id: UUID) -> int:
    """How many admins besides this user can still sign in to the console: the organization must
    never be left with none (prepared, so SCIM's writes on DirectWrites ask it too)."""
    found = await prepared(_OTHERS).first(conn, {"t": tenant_id, "u": user_id})
    return int(found["n"]) if found else 0


def ends_admin(user: Current, values: Mapping[str, Any] | None) -> bool:
    """Whether this write (None: a removal) leaves the user no longer a working admin."""
    if user.values["role"] != "admin" or not user.values["active"]:
        return False
    return (
        values is None or values.get("role", "admin") != "admin" or not values.get("active", True)
    )


NO_ADMIN_LEFT = "no_admin_left"
_SLUG = sa.select(tenants.c.slug).where(tenants.c.tenant_id == sa.bindparam("t"))


async def warn_if_none_left(
    conn: Connection,
    tenant_id: UUID,
    user: Current,
    values: Mapping[str, Any] | None,
    *,
    channel: str,
    actor: str,
) -> bool:
    """After a write the caller was obliged to make (an identity provider deactivating or
    deleting a leaver: it decides, not Roster) that ends `user`'s admin access: when the
    organization has no admin left who can sign in, a warning in the audit log says so and how
    to make one. Whether it was recorded."""
    if not ends_admin(user, values) or await others(conn, tenant_id, user.id) > 0:
        return False
    found = await prepared(_SLUG).first(conn, {"t": tenant_id})
    slug = found["slug"] if found else "SLUG"
    message = (
        f"The organization has no admin left: {user.values['username']} was its last one. "
        "Nobody can sign in to the Control Centre until an operator makes an admin: "
        f"roster admin create --tenant {slug} --email ADDRESS (the password is read from stdin)."
    )
    log.warning("organization %s has no admin left (%s, %s)", slug, channel, actor)
    event = audit_event(
        tenant_id,
        now(),
        channel,
        actor,
        NO_ADMIN_LEFT,
        user_id=user.id,
        after={"warning": message},
    )
    await record_events(conn, [event])
    return True


async def forget(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> None:
    """Drop a former admin's credentials: made an admin again later, they start afresh."""
    await conn.execute(
        admin_credentials.delete().where(
            admin_credentials.c.tenant_id == tenant_id, admin_credentials.c.user_id == user_id
        )
    )
