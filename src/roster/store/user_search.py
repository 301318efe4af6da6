"""The console's user list: search, filters, sort and pages, in SQL with bound values."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roster.domain.fields import has_control
from roster.store.schema import users

# Names and departments in the order people expect (domain.collation), the same on both
# databases; ties by username. A descending list is the ascending one reversed, ties too, so
# either direction reads one index in order.
SORTS = {
    "username": users.c.username_key,
    "name": users.c.display_name_sort_key,
    "email": users.c.email_key,
    "department": users.c.department_sort_key,
}
PER_PAGE = 50
SHOWN = (
    users.c.id, users.c.username, users.c.display_name, users.c.first_name, users.c.surname,
    users.c.email, users.c.department, users.c.active, users.c.role, users.c.managed_by,
    users.c.first_aider, users.c.emergency_responder,
)  # fmt: skip


@dataclass(frozen=True)
class Query:
    text: str = ""
    active: bool | None = None
    first_aider: bool | None = None
    emergency_responder: bool | None = None
    channel: str | None = None  # managed_by: csv or scim
    sort: str = "username"
    descending: bool = False
    page: int = 1


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.casefold()}%"


def _where(tenant_id: UUID, query: Query) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [
        users.c.tenant_id == tenant_id,
        users.c.removed_at.is_(None),
    ]
    if has_control(query.text):  # no stored text holds one: nothing matches
        conditions.append(sa.false())
    elif query.text.strip():
        conditions.append(users.c.search_text.like(_like(query.text.strip()), escape="\\"))
    for column, wanted in (
        (users.c.active, query.active),
        (users.c.first_aider, query.first_aider),
        (users.c.emergency_responder, query.emergency_responder),
    ):
        if wanted is not None:
            conditions.append(
                column.is_(True) if wanted else sa.not_(sa.func.coalesce(column, False))
            )
    if query.channel:
        conditions.append(users.c.managed_by == query.channel)
    return conditions


async def search(
    conn: AsyncConnection, tenant_id: UUID, query: Query
) -> tuple[list[dict[str, Any]], int]:
    """One page of present users matching the query, and how many match in all."""
    where = _where(tenant_id, query)
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(users).where(*where))
    ).scalar_one()
    order = [SORTS.get(query.sort, users.c.username_key), users.c.username_key]
    rows = await conn.execute(
        sa.select(*SHOWN)
        .where(*where)
        .order_by(*(column.desc() if query.descending else column for column in order))
        .limit(PER_PAGE)
        .offset((max(query.page, 1) - 1) * PER_PAGE)
    )
    return [dict(r._mapping) for r in rows], total
