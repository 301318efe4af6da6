"""SCIM User attributes <-> directory fields. Pure: no I/O.

The SCIM representation of a user is built from the directory, and an incoming SCIM User is read
back into directory values, through one table. Attributes the table does not know are ignored,
never an error (identity providers send many).
"""

import re
from typing import Any

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ROSTER = "urn:roster:params:scim:schemas:extension:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _lower(data: Any) -> Any:
    """Attribute names are case-insensitive (RFC 7643 §2.1): compare them folded."""
    if isinstance(data, dict):
        return {str(k).lower(): _lower(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_lower(v) for v in data]
    return data


def _typed(items: Any, wanted: str, primary_first: bool = False) -> dict[str, Any] | None:
    """The element of a multi-valued attribute with this type (or the primary, or the only one,
    for work e-mail addresses)."""
    if not isinstance(items, list):
        return None
    elements = [i for i in items if isinstance(i, dict)]
    if primary_first:  # the primary e-mail address is the work one
        for element in elements:
            if element.get("primary") in (True, "true", "True"):
                return element
    for element in elements:
        if str(element.get("type", "")).lower() == wanted:
            return element
    if wanted in ("work", "photo"):
        for element in elements:
            if element.get("primary") in (True, "true", "True") and "type" not in element:
                return element
        if len(elements) == 1 and "type" not in elements[0]:
            return elements[0]
    return None


def _flag(value: Any) -> Any:
    """Booleans as Entra ID sends them too: "True"/"False" strings."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


# Which SCIM attribute feeds each directory field, unless an organization chose otherwise.
DEFAULT: dict[str, str] = {
    "username": "userName",
    "first_name": "name.givenName",
    "surname": "name.familyName",
    "display_name": "displayName",
    "title": "title",
    "phone": 'phoneNumbers[type eq "work"].value',
    "mobile": 'phoneNumbers[type eq "mobile"].value',
    "department": f"{ENTERPRISE}:department",
    "email": 'emails[type eq "work"].value',
    "first_aider": f"{ROSTER}:firstAider",
    "emergency_responder": f"{ROSTER}:emergencyResponder",
    "profile_photo": 'photos[type eq "photo"].value',
}
# The sources an organization may choose from (besides the defaults).
SOURCES: frozenset[str] = frozenset(DEFAULT.values()) | {
    "name.formatted",
    "nickName",
    "userType",
    'emails[type eq "home"].value',
    'phoneNumbers[type eq "home"].value',
    f"{ENTERPRISE}:division",
    f"{ENTERPRISE}:organization",
    f"{ENTERPRISE}:costCenter",
    f"{ENTERPRISE}:employeeNumber",
}
# Without these no user can exist: they can be fed from elsewhere but not switched off.
MANDATORY = ("username", "first_name", "surname", "display_name", "email")

_PATH = re.compile(
    r'(?:(?P<urn>urn:[^\[\]"]+):)?(?P<attr>[A-Za-z][\w-]*)'
    r'(?:\[type eq "(?P<type>[^"]*)"\])?(?:\.(?P<sub>[A-Za-z][\w-]*))?'
)


class MappingError(ValueError):
    pass


def effective(custom: dict[str, str | None]) -> dict[str, str | None]:
    """The organization's mapping: the defaults with its choices on top (None: switched off)."""
    return {**DEFAULT, **custom}


def check_choice(field: str, source: str | None) -> None:
    """Refuse a choice that cannot work, saying why."""
    if field not in DEFAULT:
        raise MappingError(f"unknown field {field!r}; fields: {', '.join(DEFAULT)}")
    if source is None and field in MANDATORY:
        raise MappingError(
            f"{field} is mandatory: it can be fed from another attribute, not switched off"
        )
    if source is not None and source not in SOURCES:
        raise MappingError(
            f"{source!r} is not a supported source; sources: {', '.join(sorted(SOURCES))}"
        )


def _read(data: dict[str, Any], source: str) -> tuple[bool, Any]:
    """(present, value) of a source path in a lower-cased SCIM resource."""
    match = _PATH.fullmatch(source)
    assert match is not None, source
    container: Any = data
    if match["urn"]:
        container = data.get(match["urn"].lower())
    if not isinstance(container, dict) or match["attr"].lower() not in container:
        return False, None
    value = container[match["attr"].lower()]
    if match["type"] is not None:
        value = _typed(value, match["type"].lower(), match["attr"].lower() == "emails")
    if match["sub"] is not None:
        if value is not None and not isinstance(value, dict):
            return True, None
        value = (value or {}).get(match["sub"].lower())
    return True, value


def from_scim(
    resource: dict[str, Any], mapping: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Directory values for the attributes this SCIM User carries, as the organization's
    mapping says (absent ones are left out; null or an empty string means "no value"; fields
    switched off are never read). Values are not validated here."""
    data = _lower(resource)
    values: dict[str, Any] = {}
    for field, source in (mapping or DEFAULT).items():
        if source is None:
            continue
        present, value = _read(data, source)
        if present:
            values[field] = value
    if data.get("active") is not None:  # null is unassigned (RFC 7643 §2.5): left as it is
        values["active"] = data["active"]
    if "externalid" in data:
        values["external_id"] = data["externalid"]
    for field in ("active", "first_aider", "emergency_responder"):
        if field in values:
            values[field] = _flag(values[field])
    enterprise = data.get(ENTERPRISE.lower())
    enterprise = enterprise if isinstance(enterprise, dict) else {}
    extra = {
        name: enterprise[name.lower()]
        for name in ("employeeNumber", "manager")
        if name.lower() in enterprise
    }
    if extra:
        values["extra"] = extra
    return values


def _write(resource: dict[str, Any], source: str, value: Any) -> None:
    """Put a value at a source path (the inverse of _read), creating what is missing."""
    match = _PATH.fullmatch(source)
    assert match is not None, source
    container = resource
    if match["urn"]:
        container = resource.setdefault(match["urn"], {})
    attr = match["attr"]
    if match["type"] is not None:
        elements = container.setdefault(attr, [])
        element = next((e for e in elements if e.get("type") == match["type"]), None)
        if element is None:
            element = {"type": match["type"]}
            elements.append(element)
        container, attr = element, match["sub"] or "value"
    elif match["sub"] is not None:
        container, attr = container.setdefault(attr, {}), match["sub"]
    container[attr] = value


def to_scim(
    user: dict[str, Any], location: str, mapping: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The SCIM User for a directory user (a row of the users table). A field fed from a
    non-default source also shows there, so reading the resource back gives the same user."""
    emails = [{"value": user["email"], "type": "work"}]
    phones = [
        {"value": user[field], "type": kind}
        for field, kind in (("phone", "work"), ("mobile", "mobile"))
        if user.get(field)
    ]
    resource: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE, ROSTER],
        "id": str(user["id"]),
        "userName": user["username"],
        "name": {
            "givenName": user["first_name"],
            "familyName": user["surname"],
        },
        "displayName": user["display_name"],
        "active": bool(user["active"]),
        "emails": emails,
        ENTERPRISE: {"department": user.get("department")},
        ROSTER: {
            "firstAider": user.get("first_aider"),
            "emergencyResponder": user.get("emergency_responder"),
        },
        "meta": {
            "resourceType": "User",
            "created": user["created_at"].isoformat(),
            "lastModified": user["updated_at"].isoformat(),
            "location": location,
            "version": f'W/"{user["version"]}"',
        },
    }
    if user.get("external_id"):
        resource["externalId"] = user["external_id"]
    if user.get("title"):
        resource["title"] = user["title"]
    if phones:
        resource["phoneNumbers"] = phones
    if user.get("profile_photo"):
        resource["photos"] = [{"value": user["profile_photo"], "type": "photo"}]
    extra = user.get("extra") or {}
    resource[ENTERPRISE].update(extra)
    for extension in (ENTERPRISE, ROSTER):  # an extension with no value is left out whole
        present = {k: v for k, v in resource[extension].items() if v is not None}
        if present:
            resource[extension] = present
        else:
            del resource[extension]
            resource["schemas"].remove(extension)
    for field, source in (mapping or DEFAULT).items():
        if source is not None and source != DEFAULT[field] and user.get(field) is not None:
            _write(resource, source, user[field])
    return resource
