"""A SCIM filter tree (domain.filter_tree) as a SQLAlchemy condition, every value a bound
parameter. Where each attribute lives is the caller's to say (`Resolver`; Roster's users and
groups: store.scim_search); what a comparison means is the tree's, so the condition selects
exactly the rows whose resources `web.scim.filter.matches` would keep.

    to_sql(parse('userName eq "Jan"'), resolve_user)
    ->  users.username_key = :username_key_1, bound to "jan"
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, assert_never

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from roster.domain.filter_tree import (
    SUBSTRING,
    And,
    AttrPath,
    Compare,
    FilterError,
    Node,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
    check_value,
    compare,
    datetime_value,
    present,
)

Kind: TypeAlias = Literal["string", "boolean", "integer", "datetime", "reference", "id"]
_KINDS = frozenset({"string", "boolean", "integer", "datetime", "reference", "id"})


@dataclass(frozen=True, eq=False)
class Scalar:
    """A column. With `key` and `fold`, case-insensitive comparisons compare the `key` column
    with `fold(value)` (the value normalized exactly as the stored one was); without them,
    `lower(column)` with the value composed (NFC, as text is stored) and lowered."""

    column: ColumnElement[Any]
    kind: Kind
    case_exact: bool = False
    key: ColumnElement[Any] | None = None
    fold: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")


@dataclass(frozen=True, eq=False)
class Constant:
    """A sub-attribute whose value is fixed."""

    value: Value
    case_exact: bool = False


@dataclass(frozen=True, eq=False)
class Entry:
    """One stored value of a multi-valued attribute: when it exists and its sub-attributes."""

    present: ColumnElement[bool]
    sub: dict[str, Scalar | Constant]
    value: str = "value"


@dataclass(frozen=True, eq=False)
class Multi:
    entries: tuple[Entry, ...]


Target: TypeAlias = Scalar | Constant | Multi
Resolver: TypeAlias = Callable[[AttrPath], Target]


def _truth(value: bool) -> ColumnElement[bool]:
    return sa.true() if value else sa.false()


def _any(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return sa.or_(*clauses) if clauses else sa.false()


def _negate(clause: ColumnElement[bool]) -> ColumnElement[bool]:
    """NOT that treats an unknown (NULL) inner result as false, as `matches` does."""
    return sa.not_(sa.func.coalesce(clause, sa.false(), type_=sa.Boolean()))


def _binary(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    match op:
        case "eq":
            return column == value
        case "ne":
            return column != value
        case "gt":
            return column > value
        case "ge":
            return column >= value
        case "lt":
            return column < value
        case "le":
            return column <= value
    raise FilterError(f'"{op}" is not supported here')


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _exact_substring(column: ColumnElement[Any], op: str, value: str) -> ColumnElement[bool]:
    """A case-sensitive check next to LIKE (which ignores case on SQLite)."""
    if op == "sw":
        return sa.func.substr(column, 1, len(value)) == value
    if op == "ew":
        length = sa.func.length(column)
        return sa.and_(
            length >= len(value), sa.func.substr(column, length - len(value) + 1) == value
        )
    return sa.true() if value == "" else sa.func.replace(column, value, "") != column


def _like(column: ColumnElement[Any], op: str, value: str, exact: bool) -> ColumnElement[bool]:
    pattern = _escape_like(value)
    pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op]
    clause = column.like(pattern, escape="\\")
    return sa.and_(clause, _exact_substring(column, op, value)) if exact else clause


def _string_compare(target: Scalar, path: AttrPath, op: str, value: Value) -> ColumnElement[bool]:
    if not isinstance(value, str):
        raise FilterError(f"expected a string value for {path}")
    if target.case_exact or target.kind == "reference":
        column, wanted = target.column, value
    elif target.key is not None and target.fold is not None:
        column, wanted = target.key, target.fold(value)
        if op in SUBSTRING:
            return _like(column, op, wanted, exact=False)
    else:
        column = sa.func.lower(target.column, type_=sa.String())
        wanted = unicodedata.normalize("NFC", value).lower()
    if op in SUBSTRING:
        return _like(column, op, wanted, target.case_exact or target.kind == "reference")
    return _binary(column, op, wanted)


def _id_compare(target: Scalar, path: AttrPath, op: str, value: Value) -> ColumnElement[bool]:
    """A resource's id (a UUID column) is compared whole, with eq or ne: a value that is no id
    is equal to none (Entra ID asks `id eq "…" and manager eq "…"` before it sets a manager)."""
    if op not in ("eq", "ne"):
        raise FilterError(f'"{op}" cannot be used on {path}: ids are compared with eq or ne')
    if not isinstance(value, str):
        raise FilterError(f"expected a string value for {path}")
    try:
        wanted = uuid.UUID(value)
    except ValueError:
        return _truth(op == "ne")
    return _binary(target.column, op, wanted)


def _scalar_compare(target: Scalar, path: AttrPath, op: str, value: Value) -> ColumnElement[bool]:
    if target.kind in ("string", "reference"):
        return _string_compare(target, path, op, value)
    if target.kind == "id":
        return _id_compare(target, path, op, value)
    if op in SUBSTRING:
        raise FilterError(f'"{op}" cannot be used on {path}, a {target.kind} attribute')
    if target.kind == "boolean":
        if not isinstance(value, bool):
            raise FilterError(f"expected true or false for {path}")
        return _binary(target.column, op, value)
    if target.kind == "datetime":
        if not isinstance(value, str):
            raise FilterError(f"expected an ISO 8601 date-time string for {path}")
        return _binary(target.column, op, datetime_value(value, path))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FilterError(f"expected a number for {path}")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise FilterError(f"number out of range for {path}")
    return _binary(target.column, op, value)


def _entry_target(multi: Multi, entry: Entry, name: str, path: AttrPath) -> Scalar | Constant:
    def lookup(candidate: Entry) -> Scalar | Constant | None:
        return next((t for k, t in candidate.sub.items() if k.lower() == name.lower()), None)

    found = lookup(entry)
    if found is not None:
        return found
    if any(lookup(other) is not None for other in multi.entries):
        return Constant(None)
    raise FilterError(f"unknown attribute {path.attr}.{name}")


def _per_entry(
    multi: Multi, path: AttrPath, clause: Callable[[Scalar | Constant], ColumnElement[bool]]
) -> ColumnElement[bool]:
    return _any(
        [
            sa.and_(
                entry.present, clause(_entry_target(multi, entry, path.sub or entry.value, path))
            )
            for entry in multi.entries
        ]
    )


def _present_sql(target: Target, path: AttrPath) -> ColumnElement[bool]:
    match target:
        case Scalar():
            not_null = target.column.is_not(None)
            if target.kind in ("string", "reference"):
                return sa.and_(not_null, target.column != "")
            return not_null
        case Constant():
            return _truth(present(target.value))
        case Multi():
            if path.sub is None:
                return _any([entry.present for entry in target.entries])
            return _per_entry(target, path, lambda sub: _present_sql(sub, path))
    assert_never(target)


def _compare_sql(target: Target, path: AttrPath, op: str, value: Value) -> ColumnElement[bool]:
    check_value(path, op, value)
    if value is None:
        filled = _present_sql(target, path)
        return filled if op == "ne" else _negate(filled)
    match target:
        case Scalar():
            return _scalar_compare(target, path, op, value)
        case Constant():
            if target.value is None:
                return sa.false()
            return _truth(compare(path, target.value, op, value, target.case_exact))
        case Multi():
            return _per_entry(target, path, lambda sub: _compare_sql(sub, path, op, value))
    assert_never(target)


def _value_path_sql(node: ValuePath, resolve: Resolver, positive: bool) -> ColumnElement[bool]:
    parent = node.path
    target = resolve(parent)

    def unknown(path: AttrPath) -> FilterError:
        return FilterError(f"unknown attribute {parent}[{path}]")

    if not isinstance(target, Multi):

        def nested(path: AttrPath) -> Target:
            if path.schema is not None or path.sub is not None:
                raise unknown(path)
            return resolve(AttrPath(parent.schema, parent.attr, path.attr))

        return _sql(node.filter, nested, positive)

    def per_entry(entry: Entry) -> Resolver:
        def resolve_sub(path: AttrPath) -> Target:
            if path.schema is not None or path.sub is not None:
                raise unknown(path)
            return _entry_target(target, entry, path.attr, parent)

        return resolve_sub

    clauses = [
        _join(
            positive, _leaf(entry.present, positive), _sql(node.filter, per_entry(entry), positive)
        )
        for entry in target.entries
    ]
    return _join(not positive, *clauses) if clauses else _truth(not positive)


def _join(conjunction: bool, *clauses: ColumnElement[bool]) -> ColumnElement[bool]:
    return sa.and_(*clauses) if conjunction else sa.or_(*clauses)


def _leaf(clause: ColumnElement[bool], positive: bool) -> ColumnElement[bool]:
    return clause if positive else _negate(clause)


def _sql(node: Node, resolve: Resolver, positive: bool) -> ColumnElement[bool]:
    """Negations are pushed down to the leaves (De Morgan), so the SQL nests no deeper than the
    and/or structure (SQLite's parser allows few nested levels)."""
    match node:
        case And(left, right):
            return _join(positive, _sql(left, resolve, positive), _sql(right, resolve, positive))
        case Or(left, right):
            return _join(
                not positive, _sql(left, resolve, positive), _sql(right, resolve, positive)
            )
        case Not(inner):
            return _sql(inner, resolve, not positive)
        case Present(path):
            return _leaf(_present_sql(resolve(path), path), positive)
        case Compare(path, op, value):
            return _leaf(_compare_sql(resolve(path), path, op, value), positive)
        case ValuePath():
            return _value_path_sql(node, resolve, positive)
    assert_never(node)


def to_sql(node: Node, resolve: Resolver) -> ColumnElement[bool]:
    """A SQLAlchemy condition for the filter, every value a bound parameter. `resolve` maps an
    attribute path to its storage or raises FilterError; for a multi-valued attribute it returns
    the Multi whatever the sub-attribute, and the sub-attribute is taken from its entries."""
    return _sql(node, resolve, positive=True)
