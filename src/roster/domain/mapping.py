"""SCIM User attributes <-> directory fields. Pure: no I/O.

The SCIM representation of a user is built from the directory, and an incoming SCIM User is read
back into directory values, through one table. Attributes the table does not know are ignored,
never an error (identity providers send many).
"""

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


def _typed(items: Any, wanted: str) -> dict[str, Any] | None:
    """The element of a multi-valued attribute with this type (or the primary, or the only one,
    for work e-mail addresses)."""
    if not isinstance(items, list):
        return None
    elements = [i for i in items if isinstance(i, dict)]
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


def from_scim(resource: dict[str, Any]) -> dict[str, Any]:
    """Directory values for the attributes this SCIM User carries (absent ones are left out;
    null or an empty string means "no value"). Values are not validated here."""
    data = _lower(resource)
    enterprise = data.get(ENTERPRISE.lower()) or {}
    roster = data.get(ROSTER.lower()) or {}
    name = data.get("name") or {}
    values: dict[str, Any] = {}

    def take(field: str, container: Any, attribute: str) -> None:
        if isinstance(container, dict) and attribute in container:
            values[field] = container[attribute]

    take("username", data, "username")
    take("first_name", name, "givenname")
    take("surname", name, "familyname")
    take("display_name", data, "displayname")
    take("title", data, "title")
    take("external_id", data, "externalid")
    take("active", data, "active")
    take("department", enterprise, "department")
    take("first_aider", roster, "firstaider")
    take("emergency_responder", roster, "emergencyresponder")
    for field, attribute, kind in (
        ("email", "emails", "work"),
        ("phone", "phonenumbers", "work"),
        ("mobile", "phonenumbers", "mobile"),
        ("profile_photo", "photos", "photo"),
    ):
        if attribute in data:
            element = _typed(data[attribute], kind)
            values[field] = element.get("value") if element else None
    for field in ("active", "first_aider", "emergency_responder"):
        if field in values:
            values[field] = _flag(values[field])
    extra = {k: enterprise[k] for k in ("employeenumber", "manager") if k in enterprise}
    if extra:
        values["extra"] = {
            "employeeNumber" if k == "employeenumber" else k: v for k, v in extra.items()
        }
    return values


def to_scim(user: dict[str, Any], location: str) -> dict[str, Any]:
    """The SCIM User for a directory user (a row of the users table)."""
    emails = [{"value": user["email"], "type": "work", "primary": True}]
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
            "formatted": f"{user['first_name']} {user['surname']}",
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
    resource[ENTERPRISE] = {k: v for k, v in resource[ENTERPRISE].items() if v is not None}
    resource[ROSTER] = {k: v for k, v in resource[ROSTER].items() if v is not None}
    return resource


# The SCIM attribute each directory field is named by in errors.
ATTRIBUTE_OF = {
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
    "active": "active",
    "external_id": "externalId",
}
