"""The audit log as the console shows it: one organization's events, newest first, filtered.

Filters are bound parameters; every query leads with tenant_id and orders by `at` (then `id`,
since an import's events share one time), so the (tenant_id, at, id) index serves the page. The
console's pages are found by offset, and one row more than a page is read to know whether an
older page exists (no COUNT over a log that only grows); the CSV download reads every match in
keyset pages (`before`), each after the last one's (at, id).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import has_control
from roster.store.schema import audit_events, users

PER_PAGE = 50
CHANNELS = ("console", "csv", "sftp", "scim", "cli", "sso")


@dataclass(frozen=True)
class Filter:
    user: str = ""  # the username contains this (case-insensitive)
    channel: str | None = None
    actor: str = ""  # the actor contains this (case-insensitive)
    since: date | None = None  # from this day on, in the organization's zone
    until: date | None = None  # up to and including this day
    page: int = 1


@dataclass(frozen=True)
class Event:
    id: UUID
    at: datetime
    channel: str
    actor: str
    action: str
    user_id: UUID | None
    username: str | None  # None once the user is purged (the event then names them itself)
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) of each field whose value differs, in a stable order."""
        before, after = _blanked(self.before), _blanked(self.after)
        names = list(before) + [n for n in after if n not in before]
        return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]


def _blanked(values: dict[str, Any] | None) -> dict[str, Any]:
    """Empty values ("", {}, []) mean "no value", like None: not worth a line in the log."""
    return {k: v for k, v in (values or {}).items() if v not in ("", {}, [], None)}


def contains(column: Any, text: str) -> sa.ColumnElement[bool]:
    """The column holds `text`, case-insensitively (LIKE's wildcards in it are plain text)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{escaped}%", escape="\\")


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def on_days(
    column: Any, since: date | None, until: date | None, tz: ZoneInfo
) -> list[sa.ColumnElement[bool]]:
    """The time in `column` falls from the day `since` to the day `until` (both included, either
    open), days as the organization's zone counts them."""
    found = []
    if since:
        found.append(column >= _midnight(since, tz))
    if until:
        found.append(column < _midnight(until + timedelta(days=1), tz))
    return found


def _matching(tenant_id: UUID, wanted: Filter, tz: ZoneInfo) -> sa.Select[Any]:
    # The user is joined on the full key, so another organization's user can never match.
    same_user = sa.and_(
        users.c.tenant_id == audit_events.c.tenant_id, users.c.id == audit_events.c.user_id
    )
    joined = audit_events.outerjoin(users, same_user)
    query = sa.select(audit_events, users.c.username).select_from(joined)
    query = query.where(audit_events.c.tenant_id == tenant_id)
    if wanted.user.strip():
        query = query.where(contains(users.c.username, wanted.user.strip()))
    if wanted.channel:
        query = query.where(audit_events.c.channel == wanted.channel)
    if wanted.actor.strip():
        query = query.where(contains(audit_events.c.actor, wanted.actor.strip()))
    return query.where(*on_days(audit_events.c.at, wanted.since, wanted.until, tz))


async def search(
    conn: AsyncConnection, tenant_id: UUID, wanted: Filter, tz: ZoneInfo
) -> tuple[list[Event], bool]:
    """One page of events and whether an older page exists."""
    if has_control(wanted.user, wanted.actor):  # no username or actor holds one
        return [], False
    query = (
        _matching(tenant_id, wanted, tz)
        .order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
        .offset((wanted.page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    )
    rows = (await conn.execute(query)).all()
    return [_event(r) for r in rows[:PER_PAGE]], len(rows) > PER_PAGE


def _event(r: sa.Row[Any]) -> Event:
    return Event(r.id, r.at, r.channel, r.actor, r.action, r.user_id, r.username, r.before, r.after)


Key = tuple[datetime, UUID]  # where an event stands in the log's order


def key_of(event: Event) -> Key:
    return event.at, event.id


async def before(
    conn: AsyncConnection,
    tenant_id: UUID,
    wanted: Filter,
    tz: ZoneInfo,
    after: Key | None,
    limit: int,
) -> list[Event]:
    """Up to `limit` events of the filter, newest first, from the one after `after` (the key
    of the last event of the page before) on: a keyset page (`store.keyset.pages`)."""
    if has_control(wanted.user, wanted.actor):
        return []
    query = _matching(tenant_id, wanted, tz)
    if after is not None:
        query = query.where(sa.tuple_(audit_events.c.at, audit_events.c.id) < after)
    query = query.order_by(audit_events.c.at.desc(), audit_events.c.id.desc()).limit(limit)
    return [_event(r) for r in await conn.execute(query)]


async def last_page(conn: AsyncConnection, tenant_id: UUID, wanted: Filter, tz: ZoneInfo) -> int:
    """The number of the filter's last page (1 when nothing matches): counted only for a
    page asked for past the end."""
    if has_control(wanted.user, wanted.actor):
        return 1
    matching = _matching(tenant_id, wanted, tz).subquery()
    count = (await conn.execute(sa.select(sa.func.count()).select_from(matching))).scalar_one()
    return max(1, -(-count // PER_PAGE))
