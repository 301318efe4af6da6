"""A SCIM User body read into directory values by an identity provider's rules
(fields.Source.IDP): the identity provider is the source of truth for its users, so no optional
attribute blocks a person and the names Roster must have are derived when not sent."""

from typing import Any

from roster.domain.fields import BY_NAME, Source, check, check_typed
from roster.domain.mapping import ENTERPRISE, attribute, from_scim
from roster.web.scim.common import check_identifier, identifier_problem
from roster.web.scim.errors import ScimError

# Without these Roster cannot tell who the person is: a value it cannot use is a 400.
IDENTITY = ("username", "email")
Mapping = dict[str, str | None]


def validated(
    body: Any, mapping: Mapping, warnings: list[str], current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Directory values from a SCIM User body. A userName or work e-mail address Roster cannot
    use, or a value of the wrong JSON type, is a 400 invalidValue naming the attribute. Any
    other value that breaks a rule is left out with a warning appended to `warnings`: the user
    as stored (`current`) keeps its value. Names not sent are derived (see derive_names)."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    name = attribute(body, "name")
    if name is not None and not isinstance(name, dict):
        raise ScimError(400, "name must be a complex value (a JSON object)", "invalidValue")
    values = from_scim(body, mapping)
    checked: dict[str, Any] = {}
    for name, value in values.items():
        field = BY_NAME.get(name)
        if field is None:
            checked[name] = _state(name, value, warnings, current)
            continue
        stored, problem = check_typed(field, value, Source.IDP)
        if problem is None:
            checked[name] = stored
        elif name in IDENTITY or problem.code == "invalid_type":
            raise ScimError(400, f"{mapping[name]} {problem.message}", "invalidValue")
        else:
            warnings.append(f"{mapping[name]} left out: {problem.message}")
            if current is not None:
                checked[name] = current.get(name)
    missing = [mapping[n] or n for n in IDENTITY if checked.get(n) is None]
    if missing:
        raise ScimError(400, f"{', '.join(missing)} is required", "invalidValue")
    derive_names(checked, body)
    return checked


def _fitted(name: str, *candidates: str | None) -> str | None:
    """The first candidate that is a valid value of the field once cut to its length."""
    field = BY_NAME[name]
    for candidate in candidates:
        cut = (candidate or "").strip()[: field.idp_max].strip()
        value, problem = check(field, cut, Source.IDP)
        if value is not None and problem is None:
            return str(value)
    return None


def derive_names(values: dict[str, Any], body: dict[str, Any]) -> None:
    """Fill in the names Roster must have and the identity provider did not send (or sent
    unusable, with no stored value to keep): the display name from name.formatted, else the
    given and family name, else the userName; a given or family name from the display name
    ("Jansen, Jan": after and before the comma; otherwise the first word and the rest; a
    single word is both)."""
    given, family = values.get("first_name"), values.get("surname")
    if values.get("display_name") is None:
        formatted = attribute(body, "name.formatted")
        values["display_name"] = _fitted(
            "display_name",
            formatted if isinstance(formatted, str) else None,
            " ".join(n for n in (given, family) if n),
            values["username"],
        )
    display = values["display_name"] or values["username"]
    if given is None or family is None:
        before, comma, after = display.partition(",")
        if comma and before.strip() and after.strip():
            first, rest = after, before
        else:
            first, _, rest = display.strip().partition(" ")
        if given is None:
            values["first_name"] = _fitted("first_name", first, display)
        if family is None:
            values["surname"] = _fitted("surname", rest, display)


def _state(name: str, value: Any, warnings: list[str], current: dict[str, Any] | None) -> Any:
    """active, externalId and the kept enterprise attributes (employeeNumber, manager)."""
    if name == "active" and not isinstance(value, bool):
        raise ScimError(400, "active must be true or false", "invalidValue")
    if name == "external_id" and value is not None:
        check_identifier("externalId", value)
    if name != "extra":
        return value
    kept = dict(value)  # optional: a value that breaks a rule keeps the stored one
    before = (current or {}).get("extra") or {}
    for attribute_name, sent in value.items():
        inner = sent.get("value") if isinstance(sent, dict) else sent
        if inner is None:
            continue
        path = f"{ENTERPRISE}:{attribute_name}"
        if not isinstance(inner, str):
            check_identifier(path, inner)  # a wrong JSON type: 400
        problem = identifier_problem(inner)
        if problem:
            warnings.append(f"{path} left out: {problem}")
            if attribute_name in before:
                kept[attribute_name] = before[attribute_name]
            else:
                del kept[attribute_name]
    return kept
