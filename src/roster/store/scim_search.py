"""SCIM list requests in SQL: where each SCIM attribute of a user or a group lives, and the page
of an organization's users or groups a filter tree selects (store.filter_sql translates it).

    await users_page(reader, tenant_id, parse('title co "lead"'), offset=0, count=100)
    ->  (how many match in all, the page's user rows)
"""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.domain.fields import key
from roster.domain.filter_tree import AttrPath, FilterError, Node
from roster.domain.mapping import CORE, ENTERPRISE, GROUP, ROSTER
from roster.store import groups as group_store
from roster.store.filter_sql import Constant, Entry, Multi, Resolver, Scalar, Target, to_sql
from roster.store.schema import groups, users


def _text(column: Any, **options: Any) -> Scalar:
    return Scalar(column, "string", **options)


_USERNAME = _text(users.c.username, key=users.c.username_key, fold=key)
# The enterprise manager is kept as sent: {"value": id, …} or, from Entra ID, the id alone.
_MANAGER = Scalar(
    sa.func.coalesce(
        users.c.extra[("manager", "value")].as_string(),
        users.c.extra["manager"].as_string(),
        type_=sa.String(),
    ),
    "reference",
)
_USER: dict[tuple[str, str, str | None], Target] = {
    (CORE, "id", None): Scalar(users.c.id, "id"),
    (CORE, "username", None): _USERNAME,
    (CORE, "externalid", None): _text(users.c.external_id, case_exact=True),
    (CORE, "displayname", None): _text(users.c.display_name),
    (CORE, "name", "givenname"): _text(users.c.first_name),
    (CORE, "name", "familyname"): _text(users.c.surname),
    (CORE, "title", None): _text(users.c.title),
    (CORE, "active", None): Scalar(users.c.active, "boolean"),
    (CORE, "meta", "created"): Scalar(users.c.created_at, "datetime"),
    (CORE, "meta", "lastmodified"): Scalar(users.c.updated_at, "datetime"),
    (CORE, "emails", None): Multi(
        (
            Entry(
                sa.true(),
                {
                    "value": _text(users.c.email, key=users.c.email_key, fold=key),
                    "type": Constant("work"),
                    "primary": Constant(True),
                },
            ),
        )
    ),
    (CORE, "phonenumbers", None): Multi(
        (
            Entry(
                users.c.phone.is_not(None),
                {"value": _text(users.c.phone), "type": Constant("work")},
            ),
            Entry(
                users.c.mobile.is_not(None),
                {"value": _text(users.c.mobile), "type": Constant("mobile")},
            ),
        )
    ),
    (CORE, "photos", None): Multi(
        (
            Entry(
                users.c.profile_photo.is_not(None),
                {"value": _text(users.c.profile_photo, case_exact=True), "type": Constant("photo")},
            ),
        )
    ),
    (ENTERPRISE, "department", None): _text(users.c.department),
    (ENTERPRISE, "manager", None): _MANAGER,
    (ENTERPRISE, "manager", "value"): _MANAGER,
    # No core attribute is called manager: Entra ID names the enterprise one without its URN.
    (CORE, "manager", None): _MANAGER,
    (CORE, "manager", "value"): _MANAGER,
    (ROSTER, "firstaider", None): Scalar(users.c.first_aider, "boolean"),
    (ROSTER, "emergencyresponder", None): Scalar(users.c.emergency_responder, "boolean"),
}
_MULTI = {"emails", "phonenumbers", "photos"}

_GROUP: dict[tuple[str, str, str | None], Target] = {
    (GROUP, "id", None): Scalar(groups.c.id, "id"),
    (GROUP, "displayname", None): _text(
        groups.c.display_name, key=groups.c.display_name_key, fold=key
    ),
    (GROUP, "externalid", None): _text(groups.c.external_id, case_exact=True),
    (GROUP, "meta", "created"): Scalar(groups.c.created_at, "datetime"),
    (GROUP, "meta", "lastmodified"): Scalar(groups.c.updated_at, "datetime"),
}


def _lookup(table: dict[tuple[str, str, str | None], Target], core: str, path: AttrPath) -> Target:
    schema, attr, sub = path.key
    found = table.get((schema or core.lower(), attr, None if attr in _MULTI else sub))
    if found is None:
        raise FilterError(f"filtering on {path} is not supported", None, "invalidFilter")
    return found


_USER_LOWER = {(s.lower(), a, b): t for (s, a, b), t in _USER.items()}
_GROUP_LOWER = {(s.lower(), a, b): t for (s, a, b), t in _GROUP.items()}


def resolve_user(path: AttrPath) -> Target:
    """Where a user's attribute lives; FilterError for one filters cannot name."""
    return _lookup(_USER_LOWER, CORE, path)


def resolve_group(path: AttrPath) -> Target:
    """Where a group's attribute lives; FilterError for one filters cannot name."""
    return _lookup(_GROUP_LOWER, GROUP, path)


def names_username(path: AttrPath) -> bool:
    """Whether a path names a user's userName (so `path eq "…"` is a lookup by username)."""
    try:
        return resolve_user(path) is _USERNAME
    except FilterError:
        return False


def _condition(node: Node | None, resolve: Resolver) -> Any:
    return sa.true() if node is None else to_sql(node, resolve)


async def _total(
    conn: AsyncConnection, table: sa.Table, where: Any, offset: int, count: int, on_page: int
) -> int:
    """How many match in all: counted only when the page does not already tell."""
    if on_page < count and (on_page or not offset):
        return offset + on_page
    found = await conn.execute(sa.select(sa.func.count()).select_from(table).where(where))
    return int(found.scalar_one())


async def users_page(
    reader: AsyncEngine, tenant_id: UUID, node: Node | None, offset: int, count: int
) -> tuple[int, list[dict[str, Any]]]:
    """The organization's present users the filter selects (all without one), oldest first:
    how many in all, and the rows of `count` of them from `offset`. The filter is translated
    before a connection is taken, so a filter SQL cannot express fails (FilterError) first."""
    where = sa.and_(
        users.c.tenant_id == tenant_id,
        users.c.removed_at.is_(None),
        _condition(node, resolve_user),
    )
    async with reader.connect() as conn:
        found = await conn.execute(
            sa.select(users)
            .where(where)
            .order_by(users.c.created_at, users.c.id)
            .offset(offset)
            .limit(count)
        )
        rows = [dict(row._mapping) for row in found]
        total = await _total(conn, users, where, offset, count, len(rows))
    return total, rows


async def groups_page(
    reader: AsyncEngine, tenant_id: UUID, node: Node | None, offset: int, count: int
) -> tuple[int, list[group_store.Group]]:
    """The organization's groups the filter selects (all without one), oldest first, with their
    members: how many in all, and `count` of them from `offset`. A group deleted between the
    two reads is left out."""
    condition = _condition(node, resolve_group)
    async with reader.connect() as conn:
        total, ids = await group_store.ids_where(conn, tenant_id, condition, offset, count)
        found = [await group_store.find(conn, tenant_id, group_id) for group_id in ids]
    return total, [group for group in found if group is not None]
