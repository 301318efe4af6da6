"""Where each SCIM attribute lives in the database, for filters (see filter.to_sql)."""

from typing import Any

import sqlalchemy as sa

from roster.domain.fields import key
from roster.domain.mapping import CORE, ENTERPRISE, GROUP, ROSTER
from roster.store.schema import groups, users
from roster.web.scim.filter import (
    AttrPath,
    Constant,
    Entry,
    FilterError,
    Multi,
    Scalar,
    Target,
)


def _text(column: Any, **options: Any) -> Scalar:
    return Scalar(column, "string", **options)


USERNAME = _text(users.c.username, key=users.c.username_key, fold=key)
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
    (CORE, "username", None): USERNAME,
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
    return _lookup(_USER_LOWER, CORE, path)


def resolve_group(path: AttrPath) -> Target:
    return _lookup(_GROUP_LOWER, GROUP, path)
