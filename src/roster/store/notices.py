"""The notices mailed to organizations' admins: which events were told, so each is told once."""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.store.clock import now
from roster.store.schema import notices

Event = tuple[UUID, str, str]  # organization, kind, key


async def told(conn: AsyncConnection, events: Iterable[Event]) -> set[Event]:
    """Those of these events whose notice was sent."""
    wanted = set(events)
    keys = sorted({key for _, _, key in wanted})
    found: set[Event] = set()
    for start in range(0, len(keys), 500):
        query = sa.select(notices.c.tenant_id, notices.c.kind, notices.c.key).where(
            notices.c.key.in_(keys[start : start + 500])
        )
        found.update((t, kind, key) for t, kind, key in await conn.execute(query))
    return found & wanted


async def record(conn: AsyncConnection, event: Event, recipients: int) -> None:
    tenant_id, kind, key = event
    await conn.execute(
        notices.insert().values(
            tenant_id=tenant_id, kind=kind, key=key, sent_at=now(), recipients=recipients
        )
    )


async def forget(conn: AsyncConnection, before: datetime) -> int:
    """Forget notices sent before this time (a drop box still silent then is told again)."""
    result = await conn.execute(notices.delete().where(notices.c.sent_at < before))
    return result.rowcount
