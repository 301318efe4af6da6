"""SCIM PATCH (RFC 7644 §3.5.2) on a resource's JSON, in the forms identity providers send:
op names in any case, paths with value filters and extension URNs, and no-path operations whose
value holds plain, dotted or URN-qualified attribute names. The caller reads the patched JSON
back into directory values, so the field rules apply exactly as for PUT."""

import copy
from typing import Any

from roster.web.scim import filter as scim_filter
from roster.web.scim.errors import ScimError

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _key(container: dict[str, Any], name: str) -> str:
    """The existing key for a case-insensitive attribute name (or the name as given)."""
    lowered = name.lower()
    return next((k for k in container if k.lower() == lowered), name)


def _container(
    doc: dict[str, Any], schema: str | None, core: str, create: bool
) -> dict[str, Any] | None:
    if schema is None or schema.lower() == core.lower():
        return doc
    name = _key(doc, schema)
    if name not in doc and create:
        doc[name] = {}
    found = doc.get(name)
    return found if isinstance(found, dict) else None


def _element_from(condition: scim_filter.Node) -> dict[str, Any] | None:
    """`type eq "work"` (and more eqs) as the element it describes, to add when none matches."""
    match condition:
        case scim_filter.Compare(path, "eq", value) if path.sub is None:
            return {path.attr: value}
        case scim_filter.And(left, right):
            one, two = _element_from(left), _element_from(right)
            return {**one, **two} if one is not None and two is not None else None
    return None


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{_key(old, k): v for k, v in new.items()}}
    return new


def _apply(doc: dict[str, Any], op: str, path: scim_filter.Path, value: Any, core: str) -> None:
    container = _container(doc, path.attr.schema, core, create=op != "remove")
    if container is None:
        return  # removing from an extension the resource does not have: nothing to do
    name = _key(container, path.attr.attr)
    if path.filter is None and path.attr.sub is None:
        _apply_to_attribute(container, name, op, value)
        return
    if path.filter is None:
        assert path.attr.sub is not None
        inner = container.setdefault(name, {}) if op != "remove" else container.get(name)
        if isinstance(inner, dict):
            _apply_to_attribute(inner, _key(inner, path.attr.sub), op, value)
        return
    _apply_to_elements(container, name, op, path, value)


def _apply_to_attribute(container: dict[str, Any], name: str, op: str, value: Any) -> None:
    if op == "remove":
        if isinstance(value, list) and isinstance(container.get(name), list):
            # Entra ID removes members as {"op": "remove", "path": "members", "value": [...]}.
            gone = {str(v.get("value")) for v in value if isinstance(v, dict)}
            container[name] = [
                e
                for e in container[name]
                if not (isinstance(e, dict) and str(e.get("value")) in gone)
            ]
        else:
            container.pop(name, None)
    elif op == "add" and isinstance(container.get(name), list):
        additions = value if isinstance(value, list) else [value]
        present = container[name]
        container[name] = present + [v for v in additions if v not in present]
    else:
        container[name] = _merge(container.get(name), value)


def _apply_to_elements(
    container: dict[str, Any], name: str, op: str, path: scim_filter.Path, value: Any
) -> None:
    assert path.filter is not None
    elements = container.get(name)
    elements = elements if isinstance(elements, list) else []
    try:
        chosen = [
            e for e in elements if isinstance(e, dict) and scim_filter.matches(path.filter, e)
        ]
    except scim_filter.FilterError as error:  # a comparison the values cannot make
        raise ScimError(400, error.message, "invalidPath") from None
    if op == "remove":
        if path.sub is None:
            container[name] = [e for e in elements if e not in chosen]
        else:
            for element in chosen:
                element.pop(_key(element, path.sub), None)
        return
    if not chosen:
        created = _element_from(path.filter)
        if created is None:
            raise ScimError(400, f"no value of {name} matches the path's filter", "noTarget")
        elements.append(created)
        container[name] = elements
        chosen = [created]
    for element in chosen:
        if path.sub is None:
            if not isinstance(value, dict):
                raise ScimError(
                    400, f"{name}[…] without a sub-attribute needs an object", "invalidValue"
                )
            element.update(_merge(element, value))
        else:
            element[_key(element, path.sub)] = value


def apply_patch(resource: dict[str, Any], body: Any, core: str) -> dict[str, Any]:
    """The resource after the PatchOp request `body`; raises ScimError for a bad request."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise ScimError(400, "the body must be a PatchOp with an Operations list", "invalidSyntax")
    doc = copy.deepcopy(resource)
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            raise ScimError(400, "each operation must be an object", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"unknown op {operation.get('op')!r}", "invalidSyntax")
        value, text = operation.get("value"), operation.get("path")
        if text and str(text).lower().startswith("urn:") and not _is_attribute_urn(str(text)):
            _apply_to_extension(doc, op, str(text), value)
            continue
        if text:
            _apply(doc, op, _path(str(text)), value, core)
            continue
        if op == "remove":
            raise ScimError(400, "remove needs a path", "noTarget")
        if not isinstance(value, dict):
            raise ScimError(
                400, "an operation without a path needs an object value", "invalidValue"
            )
        for name, item in value.items():
            if name.lower() == "schemas":
                continue
            if (
                name.lower().startswith("urn:")
                and isinstance(item, dict)
                and name.count(":") >= 6
                and not _is_attribute_urn(name)
            ):
                for inner, inner_value in item.items():
                    _apply(doc, op, _path(f"{name}:{inner}"), inner_value, core)
                continue
            _apply(doc, op, _path(name), item, core)
    return doc


def _apply_to_extension(doc: dict[str, Any], op: str, urn: str, value: Any) -> None:
    """A path naming a whole schema extension: set, merge into or remove all of it."""
    name = _key(doc, urn)
    if op == "remove":
        doc.pop(name, None)
        return
    if not isinstance(value, dict):
        raise ScimError(400, f"{urn} needs an object value", "invalidValue")
    fields = {k: v for k, v in value.items() if k.lower() != "schemas"}
    doc[name] = _merge(doc.get(name), fields)


def _path(text: str) -> scim_filter.Path:
    try:
        return scim_filter.parse_path(text)
    except scim_filter.FilterError as error:
        raise ScimError(400, error.message, "invalidPath") from None


def _is_attribute_urn(name: str) -> bool:
    """`urn:…:User:department` names an attribute; `urn:…:enterprise:2.0:User` a schema."""
    return not name.rsplit(":", 1)[-1][:1].isupper()
