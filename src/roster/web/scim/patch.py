"""SCIM PATCH (RFC 7644 §3.5.2) on a resource's JSON, in the forms identity providers send:
op names in any case, paths with value filters and extension URNs, and no-path operations whose
value holds plain, dotted or URN-qualified attribute names. The caller reads the patched JSON
back into directory values, so the field rules apply exactly as for PUT. A PATCH holds a
bounded number of operations, and a long one is applied on a worker thread, off the event
loop."""

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread

from roster import collector
from roster.web.scim import filter as scim_filter
from roster.web.scim.errors import ScimError

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_PLAIN = (str, int, float)
T = TypeVar("T")
ON_THE_LOOP = 20_000  # values a PATCH may reach and still be applied on the event loop
WORK = 2_000_000  # what one PATCH may spend in all: a list value visited costs 1
MATCHED = 10  # ... and one the full filter matcher reads costs this much more


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


def _apply(
    doc: dict[str, Any], op: str, path: scim_filter.Path, value: Any, core: str, work: "_Work"
) -> None:
    container = _container(doc, path.attr.schema, core, create=op != "remove")
    if container is None:
        return  # removing from an extension the resource does not have: nothing to do
    name = _key(container, path.attr.attr)
    if path.filter is None and path.attr.sub is None:
        _apply_to_attribute(container, name, op, value, work)
        return
    if path.filter is None:
        assert path.attr.sub is not None
        inner = container.setdefault(name, {}) if op != "remove" else container.get(name)
        if isinstance(inner, dict):
            _apply_to_attribute(inner, _key(inner, path.attr.sub), op, value, work)
        return
    _apply_to_elements(container, name, op, path, value, work)


def _apply_to_attribute(
    container: dict[str, Any], name: str, op: str, value: Any, work: "_Work"
) -> None:
    if op == "remove":
        if isinstance(value, list) and isinstance(container.get(name), list):
            # Entra ID removes members as {"op": "remove", "path": "members", "value": [...]}.
            gone = {str(v.get("value")) for v in value if isinstance(v, dict)}
            work.spend(len(container[name]) + len(value))
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
        work.spend(len(present) + len(additions))
        new = _added(present, additions)
        container[name] = present + new
    else:
        container[name] = _merge(container.get(name), value)


def _apply_to_elements(
    container: dict[str, Any],
    name: str,
    op: str,
    path: scim_filter.Path,
    value: Any,
    work: "_Work",
) -> None:
    assert path.filter is not None
    elements = container.get(name)
    elements = elements if isinstance(elements, list) else []
    work.spend(len(elements))
    narrowed = scim_filter.candidates(path.filter, elements)
    work.spend(MATCHED * len(narrowed))
    try:
        chosen = [
            e for e in narrowed if isinstance(e, dict) and scim_filter.matches(path.filter, e)
        ]
    except scim_filter.FilterError as error:  # a comparison the values cannot make
        raise ScimError(400, error.message, "invalidPath") from None
    if op == "remove":
        if path.sub is None:
            gone = {id(e) for e in chosen}
            container[name] = [e for e in elements if id(e) not in gone]
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


class _Work:
    """The elements one PATCH has visited: bounded, so that no PATCH runs for long however its
    operations and the lists they search are combined."""

    def __init__(self) -> None:
        self.left = WORK

    def spend(self, elements: int) -> None:
        self.left -= elements
        if self.left < 0:
            raise ScimError(
                400,
                "this PATCH searches too many values in all; send its operations in smaller "
                "PATCHes",
                "tooMany",
            )


def _added(present: list[Any], additions: list[Any]) -> list[Any]:
    """The additions that neither `present` nor an earlier addition holds (compared by ==), in
    one pass over `present`: equal values have the same probe, so only those are compared."""
    probes = {_probe(v) for v in additions}
    alike: dict[Any, list[Any]] = {}
    for element in present:
        if (probe := _probe(element)) in probes:
            alike.setdefault(probe, []).append(element)
    new = []
    for value in additions:
        same = alike.setdefault(_probe(value), [])
        if value not in same:
            same.append(value)
            new.append(value)
    return new


def _probe(value: Any) -> Any:
    """What equal values share: an object's "value", or the value itself when it is plain."""
    inner = value.get("value") if isinstance(value, dict) else value
    return inner if inner is None or isinstance(inner, _PLAIN) else ...


def operations(body: Any, most: int | None = None) -> list[Any]:
    """The PatchOp request's operations, checked before any work: a list (of at most `most`)."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise ScimError(400, "the body must be a PatchOp with an Operations list", "invalidSyntax")
    found: list[Any] = body["Operations"]
    if most is not None and len(found) > most:
        raise ScimError(
            400,
            f"a PATCH may hold at most {most:,} operations; send the rest in another",
            "tooMany",
        )
    return found


def _as_it_is(resource: dict[str, Any]) -> dict[str, Any]:
    return resource


async def patched(
    resource: dict[str, Any],
    body: Any,
    core: str,
    then: Callable[[dict[str, Any]], T] = _as_it_is,  # type: ignore[assignment]
) -> T:
    """`then` of apply_patch's result (reading the patched resource costs as much as patching
    it), on a worker thread unless the PATCH is small: the event loop serves every other request
    meanwhile."""

    def apply() -> T:
        with collector.paused():
            return then(apply_patch(resource, body, core))

    if _reach(resource, operations(body)) <= ON_THE_LOOP:
        return then(apply_patch(resource, body, core))
    return await to_thread.run_sync(apply)


def _reach(resource: dict[str, Any], ops: list[Any]) -> int:
    """At most how many values a PATCH's operations reach: each may search the resource's
    values, grown by every value the PATCH brings."""
    brought = sum(_values(op.get("value")) for op in ops if isinstance(op, dict))
    return len(ops) * (_values(resource) + brought)


def _values(value: Any) -> int:
    """How many values a JSON value holds, lists and objects counted through."""
    if isinstance(value, list):
        return sum(_values(v) for v in value) + 1
    if isinstance(value, dict):
        return sum(_values(v) for v in value.values()) + 1
    return 1


def apply_patch(resource: dict[str, Any], body: Any, core: str) -> dict[str, Any]:
    """The resource after the PatchOp request `body`; raises ScimError for a bad request."""
    doc, work = copy.deepcopy(resource), _Work()
    for operation in operations(body):
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
            _apply(doc, op, _path(str(text)), value, core, work)
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
                    _apply(doc, op, _path(f"{name}:{inner}"), inner_value, core, work)
                continue
            _apply(doc, op, _path(name), item, core, work)
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
