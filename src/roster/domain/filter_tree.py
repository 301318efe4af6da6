"""The SCIM filter as a tree (RFC 7644 §3.4.2.2, PATCH paths §3.5.2), and what its comparisons
mean.

The parser (web.scim.filter) builds the tree; the evaluator beside it reads it against a SCIM JSON
resource, and the store (store.filter_sql) makes SQL of it. Both take the meaning of a comparison
from here: values are compared case-insensitively by `fields.key` unless an attribute is
caseExact, date-time strings as instants, and a value of another kind than the attribute's
matches nothing (or everything, under `ne`).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from roster.domain.fields import key

Value: TypeAlias = str | int | float | bool | None
Op: TypeAlias = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]

SUBSTRING = frozenset({"co", "sw", "ew"})
ORDERING = frozenset({"gt", "ge", "lt", "le"})


class FilterError(ValueError):
    """An invalid filter or path; `scim_type` is the SCIM error type to answer with."""

    def __init__(
        self, message: str, position: int | None = None, scim_type: str = "invalidFilter"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.scim_type = scim_type


@dataclass(frozen=True)
class AttrPath:
    """`schema:attr.sub`, names as written; `key` is the case-insensitive identity."""

    schema: str | None
    attr: str
    sub: str | None = None

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        schema = self.schema.lower() if self.schema is not None else None
        sub = self.sub.lower() if self.sub is not None else None
        return schema, self.attr.lower(), sub

    def __str__(self) -> str:
        text = f"{self.schema}:{self.attr}" if self.schema is not None else self.attr
        return f"{text}.{self.sub}" if self.sub is not None else text


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: Op
    value: Value


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    path: AttrPath
    filter: Node


Node: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class Path:
    """A PATCH path: `attr`, `attr[filter]` or `attr[filter].sub`."""

    attr: AttrPath
    filter: Node | None = None
    sub: str | None = None


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, outermost first."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        match current:
            case And() | Or():
                stack.extend((current.right, current.left))
            case Not():
                stack.append(current.inner)
            case ValuePath():
                stack.append(current.filter)


# What a comparison means

_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)

_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "co": lambda actual, expected: expected in actual,
    "sw": lambda actual, expected: actual.startswith(expected),
    "ew": lambda actual, expected: actual.endswith(expected),
}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time as a UTC instant; None for text that is not one."""
    if not _DATETIME.fullmatch(text):
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


def datetime_value(text: str, path: AttrPath) -> datetime:
    """A filter's date-time value for a date-time attribute; FilterError when it is not one."""
    value = as_datetime(text)
    if value is None:
        raise FilterError(f"expected an ISO 8601 date-time for {path}, not {json.dumps(text)}")
    return value


def check_value(path: AttrPath, op: str, value: Value) -> None:
    """Refuse an operator its value cannot take (ordering a null or a boolean, a substring of
    anything but a string), whatever the attribute holds."""
    if value is None and op not in ("eq", "ne"):
        raise FilterError(f'"{op}" cannot compare {path} with null')
    if isinstance(value, bool) and op not in ("eq", "ne"):
        raise FilterError(f'"{op}" cannot compare {path} with a boolean')
    if op in SUBSTRING and not isinstance(value, str):
        raise FilterError(f'"{op}" needs a string value for {path}')


def present(value: Any) -> bool:
    """Whether a value counts as present (`pr`): neither null nor empty text, or a list or
    complex value holding one that is."""
    if isinstance(value, list):
        return any(present(item) for item in value)
    if isinstance(value, dict):
        return any(present(item) for item in value.values())
    return value is not None and value != ""


def _comparable(
    path: AttrPath, actual: Any, expected: Value, exact: bool
) -> tuple[Any, Any] | None:
    if isinstance(actual, bool) or isinstance(expected, bool):
        same_kind = isinstance(actual, bool) and isinstance(expected, bool)
        return (actual, expected) if same_kind else None
    if isinstance(expected, int | float):
        return (actual, expected) if isinstance(actual, int | float) else None
    if not isinstance(expected, str):
        return None
    if isinstance(actual, datetime):
        return _utc(actual), datetime_value(expected, path)
    if not isinstance(actual, str):
        return None
    when, wanted = as_datetime(actual), as_datetime(expected)
    if when is not None and wanted is not None:
        return when, wanted
    return (actual, expected) if exact else (key(actual), key(expected))


def compare(path: AttrPath, actual: Any, op: str, expected: Value, exact: bool) -> bool:
    """Whether `actual op expected` holds; `exact` for a caseExact attribute."""
    if isinstance(actual, bool) and op in ORDERING:
        raise FilterError(f'"{op}" cannot be used on {path}, a boolean')
    if op in SUBSTRING:
        if not isinstance(actual, str) or not isinstance(expected, str):
            return False
        pair: tuple[Any, Any] | None = (actual, expected) if exact else (key(actual), key(expected))
    else:
        pair = _comparable(path, actual, expected, exact)
    if pair is None:
        return op == "ne"
    return _TESTS[op](*pair)
