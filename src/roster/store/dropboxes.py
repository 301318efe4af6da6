"""SFTP drop boxes: the account of each organization, its keys and its pickup schedule."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.schedule import daily_time, next_run, zone
from roster.store.clock import now
from roster.store.schema import dropbox_keys, dropboxes, tenants

DEFAULT_FILE_NAME = "flexwhere - users.csv"
DEFAULT_DAILY_TIME = "02:00"


class DropboxError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Key:
    fingerprint: str
    public_key: str
    comment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Dropbox:
    tenant_id: UUID
    slug: str
    timezone: str
    enabled: bool
    password_hash: str | None
    file_name: str
    daily_time: str
    process_on_upload: bool
    next_daily_at: datetime
    upload_pickup_at: datetime | None
    last_upload_at: datetime | None
    last_pickup_at: datetime | None
    last_import_id: UUID | None
    last_sha256: str | None
    created_at: datetime

    @property
    def last_arrival(self) -> datetime:
        """When its last file arrived or, before any did, when the drop box was made."""
        return self.last_upload_at or self.created_at

    def due(self, at: datetime) -> bool:
        return self.enabled and (
            self.next_daily_at <= at
            or (self.upload_pickup_at is not None and self.upload_pickup_at <= at)
        )


_SELECT = sa.select(dropboxes, tenants.c.slug, tenants.c.timezone).join(
    tenants, tenants.c.tenant_id == dropboxes.c.tenant_id
)


def _dropbox(row: sa.Row[Any]) -> Dropbox:
    return Dropbox(**{k: row._mapping[k] for k in Dropbox.__dataclass_fields__})


async def find(conn: AsyncConnection, tenant_id: UUID) -> Dropbox | None:
    row = (await conn.execute(_SELECT.where(dropboxes.c.tenant_id == tenant_id))).first()
    return _dropbox(row) if row else None


async def get(conn: AsyncConnection, tenant_id: UUID) -> Dropbox:
    found = await find(conn, tenant_id)
    if found is None:
        raise DropboxError("this organization has no SFTP drop box: run `roster sftp enable`")
    return found


async def by_username(conn: AsyncConnection, username: str) -> Dropbox | None:
    """The enabled drop box an SFTP login names (its organization's slug)."""
    query = _SELECT.where(tenants.c.slug == username, dropboxes.c.enabled.is_(True))
    row = (await conn.execute(query)).first()
    return _dropbox(row) if row else None


async def all_enabled(conn: AsyncConnection) -> list[Dropbox]:
    return [_dropbox(r) for r in await conn.execute(_SELECT.where(dropboxes.c.enabled.is_(True)))]


def _next_daily(daily: str, timezone: str) -> datetime:
    return next_run(now(), daily_time(daily), zone(timezone))


async def enable(conn: AsyncConnection, tenant_id: UUID, timezone: str) -> Dropbox:
    found = await find(conn, tenant_id)
    if found is None:
        await conn.execute(
            dropboxes.insert().values(
                tenant_id=tenant_id,
                enabled=True,
                file_name=DEFAULT_FILE_NAME,
                daily_time=DEFAULT_DAILY_TIME,
                process_on_upload=False,
                next_daily_at=_next_daily(DEFAULT_DAILY_TIME, timezone),
                created_at=now(),
            )
        )
    else:
        await _update(conn, tenant_id, enabled=True)
    return await get(conn, tenant_id)


async def _update(conn: AsyncConnection, tenant_id: UUID, **values: Any) -> None:
    await conn.execute(
        dropboxes.update().where(dropboxes.c.tenant_id == tenant_id).values(**values)
    )


async def disable(conn: AsyncConnection, tenant_id: UUID) -> None:
    await get(conn, tenant_id)
    await _update(conn, tenant_id, enabled=False)


async def set_password(conn: AsyncConnection, tenant_id: UUID, password_hash: str | None) -> None:
    await get(conn, tenant_id)
    await _update(conn, tenant_id, password_hash=password_hash)


async def configure(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    file_name: str | None = None,
    daily: str | None = None,
    process_on_upload: bool | None = None,
) -> Dropbox:
    """Change the pickup's settings; the next daily run follows a new time at once (the time
    zone is the organization's: `tenants.configure`)."""
    box = await get(conn, tenant_id)
    values: dict[str, Any] = {}
    if file_name is not None:
        values["file_name"] = check_file_name(file_name)
    if process_on_upload is not None:
        values["process_on_upload"] = process_on_upload
    if daily is not None:
        values["daily_time"] = daily_time(daily).strftime("%H:%M")
        values["next_daily_at"] = _next_daily(daily, box.timezone)
    if values:
        await _update(conn, tenant_id, **values)
    return await get(conn, tenant_id)


async def follow_zone(conn: AsyncConnection, tenant_id: UUID, timezone: str) -> None:
    """The next daily pickup at its time in the organization's new time zone (one already due
    stays due: the scheduler has yet to run it)."""
    box = await find(conn, tenant_id)
    if box is not None and box.next_daily_at > now():
        await _update(conn, tenant_id, next_daily_at=_next_daily(box.daily_time, timezone))


def check_file_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 255 or "/" in name or "\\" in name or name.startswith("."):
        raise DropboxError(
            f"'{name}' cannot be the pickup file's name: give a plain file name of up to 255 "
            "characters, without slashes, that does not start with a dot"
        )
    if any(ord(c) < 32 for c in name):
        raise DropboxError("the pickup file's name cannot contain control characters")
    return name


async def keys(conn: AsyncConnection, tenant_id: UUID) -> list[Key]:
    query = (
        sa.select(dropbox_keys)
        .where(dropbox_keys.c.tenant_id == tenant_id)
        .order_by(dropbox_keys.c.created_at)
    )
    return [
        Key(r.fingerprint, r.public_key, r.comment, r.created_at) for r in await conn.execute(query)
    ]


async def add_key(
    conn: AsyncConnection, tenant_id: UUID, fingerprint: str, public_key: str, comment: str
) -> None:
    await get(conn, tenant_id)
    if any(k.fingerprint == fingerprint for k in await keys(conn, tenant_id)):
        raise DropboxError(f"the key {fingerprint} is already authorized")
    await conn.execute(
        dropbox_keys.insert().values(
            tenant_id=tenant_id,
            fingerprint=fingerprint,
            public_key=public_key,
            comment=comment[:200],
            created_at=now(),
        )
    )


async def remove_key(conn: AsyncConnection, tenant_id: UUID, fingerprint: str) -> None:
    result = await conn.execute(
        dropbox_keys.delete().where(
            dropbox_keys.c.tenant_id == tenant_id, dropbox_keys.c.fingerprint == fingerprint
        )
    )
    if result.rowcount != 1:
        raise DropboxError(f"no authorized key has the fingerprint {fingerprint}")


async def uploaded(conn: AsyncConnection, tenant_id: UUID, settle_seconds: float) -> None:
    """A complete upload of the pickup file arrived: remember when, and ask for a pickup
    if the organization wants one on upload."""
    box = await get(conn, tenant_id)
    at = now()
    values: dict[str, Any] = {"last_upload_at": at}
    if box.process_on_upload:
        values["upload_pickup_at"] = at + timedelta(seconds=settle_seconds)
    await _update(conn, tenant_id, **values)


async def remember(
    conn: AsyncConnection, tenant_id: UUID, import_id: UUID, sha256: str | None
) -> None:
    """A pickup's import, written in that import's transaction: the last pickup, and the checksum
    of the file the directory now follows (None leaves it as it was), so a repeat is skipped."""
    values: dict[str, Any] = {"last_import_id": import_id}
    if sha256 is not None:
        values["last_sha256"] = sha256
    await _update(conn, tenant_id, **values)


async def forget_file(conn: AsyncConnection, tenant_id: UUID) -> None:
    """An undo changed the directory behind the last pickup's back: the next pickup imports its
    file even when it is the same as the last one."""
    await _update(conn, tenant_id, last_sha256=None)


async def picked_up(conn: AsyncConnection, box: Dropbox, *, started: datetime) -> None:
    """Record a pickup; a daily run that was due moves to the next day, and an upload's request
    is cleared unless another upload asked again meanwhile."""
    values: dict[str, Any] = {"last_pickup_at": now()}
    if box.next_daily_at <= started:
        values["next_daily_at"] = _next_daily(box.daily_time, box.timezone)
    await _update(conn, box.tenant_id, **values)
    if box.upload_pickup_at is not None and box.upload_pickup_at <= started:
        await conn.execute(
            dropboxes.update()
            .where(
                dropboxes.c.tenant_id == box.tenant_id,
                dropboxes.c.upload_pickup_at == box.upload_pickup_at,
            )
            .values(upload_pickup_at=None)
        )
