"""The latest imports of one channel (the drop box's pickups on the integrations page)."""

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.store.imports import ImportRecord, _record
from roster.store.schema import imports


async def by_channel(
    conn: AsyncConnection, tenant_id: UUID, channel: str, limit: int = 10
) -> list[ImportRecord]:
    """Newest first; the (tenant_id, created_at) index walks backwards and stops at `limit`."""
    query = (
        sa.select(imports)
        .where(imports.c.tenant_id == tenant_id, imports.c.channel == channel)
        .order_by(imports.c.created_at.desc())
        .limit(limit)
    )
    return [_record(r) for r in await conn.execute(query)]
