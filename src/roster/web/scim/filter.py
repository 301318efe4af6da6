"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): parse, evaluate, translate to SQL.

`parse` turns filter text into an immutable tree, `matches` evaluates the tree against a SCIM JSON
resource in memory, and `to_sql` translates it into a SQLAlchemy Core condition whose values are
all bound parameters. Attribute names, operators and literals are case-insensitive. Error
positions are 0-based character offsets into the text.

Beyond the RFC grammar, `attr[filter].sub op value` is accepted in filters (some clients send it)
and means `attr[filter and sub op value]`.
"""

from __future__ import annotations

import json
import math
import operator
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TypeAlias, assert_never

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from roster.domain.fields import KEY_WIDTH, has_control, key

MAX_NESTING = 24
MAX_TERMS = 200
CORE_SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:core:"

Value: TypeAlias = str | int | float | bool | None
Op: TypeAlias = Literal["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
Kind: TypeAlias = Literal["string", "boolean", "integer", "datetime", "reference", "id"]

_OPERATORS: dict[str, Op] = {
    op: op for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
}
_SUBSTRING = frozenset({"co", "sw", "ew"})
_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}
_KINDS = frozenset({"string", "boolean", "integer", "datetime", "reference", "id"})


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


# Parsing

_NAME = r"\$?[A-Za-z][A-Za-z0-9_-]*"
_TOKENS = re.compile(
    rf"""
    (?P<space>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<word>(?:[Uu][Rr][Nn]:[^\s()\[\]"]*:)?{_NAME}(?:\.{_NAME})?)
    |(?P<sub>\.{_NAME})
    |(?P<punct>[()\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str, scim_type: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKENS.match(text, pos)
        if found is None:
            if text[pos] == '"':
                message = f"unterminated string starting at position {pos}"
            else:
                message = f"unexpected character {json.dumps(text[pos])} at position {pos}"
            raise FilterError(message, pos, scim_type)
        kind = found.lastgroup or "space"
        if kind != "space":
            tokens.append(_Token(found.group() if kind == "punct" else kind, found.group(), pos))
        pos = found.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _split_path(text: str) -> AttrPath:
    schema, _, rest = text.rpartition(":")
    attr, _, sub = rest.partition(".")
    return AttrPath(schema or None, attr, sub or None)


def _fold(kind: type[And] | type[Or], terms: list[Node]) -> Node:
    """Join terms into a balanced tree, so long chains stay shallow."""
    if len(terms) == 1:
        return terms[0]
    middle = (len(terms) + 1) // 2
    return kind(_fold(kind, terms[:middle]), _fold(kind, terms[middle:]))


def _show(token: _Token) -> str:
    text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    return text if token.kind == "string" else f'"{text}"'


class _Parser:
    def __init__(self, text: str, scim_type: str) -> None:
        self.scim_type = scim_type
        self.tokens = _tokenize(text, scim_type)
        self.index = 0
        self.nesting = 0
        self.terms = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def error(self, message: str, position: int) -> FilterError:
        return FilterError(f"{message} at position {position}", position, self.scim_type)

    def fail(self, expected: str) -> FilterError:
        after = f" after {_show(self.tokens[self.index - 1])}" if self.index else ""
        return self.error(f"expected {expected}{after}", self.peek().pos)

    def expect(self, kind: str, expected: str) -> _Token:
        if self.peek().kind != kind:
            raise self.fail(expected)
        return self.take()

    def finish(self, expected: str) -> None:
        if self.peek().kind != "end":
            raise self.fail(expected)

    def enter(self, token: _Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"filter nested more than {MAX_NESTING} levels deep", token.pos)

    def count(self, token: _Token) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(f"filter has more than {MAX_TERMS} conditions", token.pos)

    def disjunction(self, inner: bool) -> Node:
        terms = [self.conjunction(inner)]
        while self.keyword("or"):
            self.take()
            terms.append(self.conjunction(inner))
        return _fold(Or, terms)

    def conjunction(self, inner: bool) -> Node:
        terms = [self.term(inner)]
        while self.keyword("and"):
            self.take()
            terms.append(self.term(inner))
        return _fold(And, terms)

    def term(self, inner: bool) -> Node:
        if self.peek().kind == "(":
            return self.group(inner)
        if self.keyword("not") and self.peek(1).kind == "(":
            self.take()
            return Not(self.group(inner))
        path = self.attr_path('an attribute name, "(" or "not"')
        if self.peek().kind != "[":
            return self.expression(path)
        if inner:
            raise self.error("a value filter cannot contain another value filter", self.peek().pos)
        condition = self.bracket()
        if self.peek().kind == "sub":
            sub = self.take()
            condition = And(condition, self.expression(AttrPath(None, sub.text[1:])))
        return ValuePath(path, condition)

    def group(self, inner: bool) -> Node:
        self.enter(self.take())
        node = self.disjunction(inner)
        self.expect(")", '"and", "or" or ")"')
        self.nesting -= 1
        return node

    def bracket(self) -> Node:
        self.enter(self.take())
        node = self.disjunction(inner=True)
        self.expect("]", '"and", "or" or "]"')
        self.nesting -= 1
        return node

    def attr_path(self, expected: str) -> AttrPath:
        return _split_path(self.expect("word", expected).text)

    def expression(self, path: AttrPath) -> Node:
        token = self.peek()
        name = token.text.lower() if token.kind == "word" else ""
        if name != "pr" and name not in _OPERATORS:
            raise self.fail("an operator")
        self.count(token)
        self.take()
        if name == "pr":
            return Present(path)
        return Compare(path, _OPERATORS[name], self.value())

    def value(self) -> Value:
        token = self.peek()
        if token.kind == "string":
            return self.string(self.take())
        if token.kind == "number":
            return self.number(self.take())
        if token.kind == "word" and token.text.lower() in _LITERALS:
            return _LITERALS[self.take().text.lower()]
        raise self.fail("a value (a string, a number, true, false or null)")

    def string(self, token: _Token) -> str:
        try:
            value = json.loads(token.text, strict=False)
        except json.JSONDecodeError as exc:
            raise self.error(f"invalid string: {exc.msg}", token.pos + exc.pos) from None
        if not isinstance(value, str):
            raise self.error("invalid string", token.pos)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.error("invalid string: unpaired surrogate", token.pos) from None
        if has_control(value):  # no stored value holds one
            raise self.error("invalid string: it contains a control character", token.pos)
        return value

    def number(self, token: _Token) -> int | float:
        try:
            value = int(token.text) if _INTEGER.fullmatch(token.text) else float(token.text)
        except ValueError:
            raise self.error("number out of range", token.pos) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("number out of range", token.pos)
        return value


def parse(text: str) -> Node:
    """Parse a SCIM filter (the `filter` query parameter)."""
    parser = _Parser(text, "invalidFilter")
    node = parser.disjunction(inner=False)
    parser.finish('"and", "or" or the end of the filter')
    return node


def parse_path(text: str) -> Path:
    """Parse a PATCH operation's `path`."""
    parser = _Parser(text, "invalidPath")
    attr = parser.attr_path("an attribute name")
    if parser.peek().kind != "[":
        parser.finish('"[" or the end of the path')
        return Path(attr)
    condition = parser.bracket()
    sub = parser.take().text[1:] if parser.peek().kind == "sub" else None
    parser.finish("the end of the path" if sub else '".subAttribute" or the end of the path')
    return Path(attr, condition, sub)


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


# Values shared by evaluation and translation

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


def _as_datetime(text: str) -> datetime | None:
    if not _DATETIME.fullmatch(text):
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


def _datetime_value(text: str, path: AttrPath) -> datetime:
    value = _as_datetime(text)
    if value is None:
        raise FilterError(f"expected an ISO 8601 date-time for {path}, not {json.dumps(text)}")
    return value


def _check_value(path: AttrPath, op: str, value: Value) -> None:
    if value is None and op not in ("eq", "ne"):
        raise FilterError(f'"{op}" cannot compare {path} with null')
    if isinstance(value, bool) and op not in ("eq", "ne"):
        raise FilterError(f'"{op}" cannot compare {path} with a boolean')
    if op in _SUBSTRING and not isinstance(value, str):
        raise FilterError(f'"{op}" needs a string value for {path}')


def _present(value: Any) -> bool:
    if isinstance(value, list):
        return any(_present(item) for item in value)
    if isinstance(value, dict):
        return any(_present(item) for item in value.values())
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
        return _utc(actual), _datetime_value(expected, path)
    if not isinstance(actual, str):
        return None
    when, wanted = _as_datetime(actual), _as_datetime(expected)
    if when is not None and wanted is not None:
        return when, wanted
    return (actual, expected) if exact else (key(actual), key(expected))


def _compare(path: AttrPath, actual: Any, op: str, expected: Value, exact: bool) -> bool:
    if isinstance(actual, bool) and op in _ORDERING:
        raise FilterError(f'"{op}" cannot be used on {path}, a boolean')
    if op in _SUBSTRING:
        if not isinstance(actual, str) or not isinstance(expected, str):
            return False
        pair: tuple[Any, Any] | None = (actual, expected) if exact else (key(actual), key(expected))
    else:
        pair = _comparable(path, actual, expected, exact)
    if pair is None:
        return op == "ne"
    return _TESTS[op](*pair)


# In-memory evaluation


def _never(path: AttrPath) -> bool:
    return False


def _get(obj: Any, name: str) -> Any:
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    wanted = name.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == wanted), None)


def _base(resource: Any, schema: str | None) -> Any:
    if schema is None:
        return resource
    extension = _get(resource, schema)
    if isinstance(extension, dict):
        return extension
    if not schema.lower().startswith(CORE_SCHEMA_PREFIX):
        return None
    declared = _get(resource, "schemas")
    if isinstance(declared, list) and schema.lower() not in {
        s.lower() for s in declared if isinstance(s, str)
    }:
        return None
    return resource


def _flat(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if item is not None]


def _values(resource: Any, path: AttrPath) -> list[Any]:
    items = _flat(_get(_base(resource, path.schema), path.attr))
    if path.sub is None:
        return items
    return [value for item in items for value in _flat(_get(item, path.sub))]


def _scalars(values: list[Any]) -> list[Any]:
    plain = [_get(value, "value") if isinstance(value, dict) else value for value in values]
    return [value for value in plain if value is not None]


def _match(node: Node, resource: Any, case_exact: Callable[[AttrPath], bool]) -> bool:
    match node:
        case And(left, right):
            results = [_match(left, resource, case_exact), _match(right, resource, case_exact)]
            return all(results)
        case Or(left, right):
            results = [_match(left, resource, case_exact), _match(right, resource, case_exact)]
            return any(results)
        case Not(inner):
            return not _match(inner, resource, case_exact)
        case Present(path):
            return any(_present(value) for value in _values(resource, path))
        case Compare(path, op, value):
            values = _values(resource, path)
            if value is None:
                return any(_present(item) for item in values) == (op == "ne")
            exact = case_exact(path)
            return any([_compare(path, item, op, value, exact) for item in _scalars(values)])
        case ValuePath(path, condition):
            elements = [e if isinstance(e, dict) else {"value": e} for e in _values(resource, path)]

            def inner_exact(sub: AttrPath) -> bool:
                return case_exact(AttrPath(path.schema, path.attr, sub.attr))

            return any([_match(condition, element, inner_exact) for element in elements])
    assert_never(node)


def matches(
    node: Node, resource: dict[str, Any], case_exact: Callable[[AttrPath], bool] = _never
) -> bool:
    """Whether a SCIM JSON resource satisfies the filter; `case_exact(path)` marks caseExact
    attributes (sub-attributes in a value filter are asked as `attr.sub`)."""
    for item in walk(node):
        if isinstance(item, Compare):
            _check_value(item.path, item.op, item.value)
    return _match(node, resource, case_exact)


_remembered_key = lru_cache(maxsize=1 << 16)(key)
_REMEMBERED = max(KEY_WIDTH.values())  # longer values are no name a key column could hold


def _key(value: str) -> str:
    """The matcher's own comparison; keys of short values (names, addresses, ids) remembered,
    so the cache holds at most 65,536 values no longer than a key column."""
    return _remembered_key(value) if len(value) <= _REMEMBERED else key(value)


def candidates(node: Node, elements: list[Any]) -> list[Any]:
    """The elements `matches(node, element)` may hold for, by a cheap pass: for a plain
    `attr eq "text"` (not a date-time) those whose attr is not a string that differs under the
    case-insensitive comparison, otherwise all. A PATCH of many `members[value eq "…"]` on a
    large group would otherwise run the full matcher on every member for every operation."""
    if not (
        isinstance(node, Compare)
        and node.op == "eq"
        and node.path.schema is None
        and node.path.sub is None
        and isinstance(node.value, str)
        and _as_datetime(node.value) is None
    ):
        return elements
    name, wanted = node.path.attr, _key(node.value)
    return [
        e
        for e in elements
        if not isinstance(e, dict)
        or name not in e
        or not isinstance(e[name], str)
        or _key(e[name]) == wanted
    ]


# Translation to SQL


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
        if op in _SUBSTRING:
            return _like(column, op, wanted, exact=False)
    else:
        column = sa.func.lower(target.column, type_=sa.String())
        wanted = unicodedata.normalize("NFC", value).lower()
    if op in _SUBSTRING:
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
    if op in _SUBSTRING:
        raise FilterError(f'"{op}" cannot be used on {path}, a {target.kind} attribute')
    if target.kind == "boolean":
        if not isinstance(value, bool):
            raise FilterError(f"expected true or false for {path}")
        return _binary(target.column, op, value)
    if target.kind == "datetime":
        if not isinstance(value, str):
            raise FilterError(f"expected an ISO 8601 date-time string for {path}")
        return _binary(target.column, op, _datetime_value(value, path))
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
            return _truth(_present(target.value))
        case Multi():
            if path.sub is None:
                return _any([entry.present for entry in target.entries])
            return _per_entry(target, path, lambda sub: _present_sql(sub, path))
    assert_never(target)


def _compare_sql(target: Target, path: AttrPath, op: str, value: Value) -> ColumnElement[bool]:
    _check_value(path, op, value)
    if value is None:
        present = _present_sql(target, path)
        return present if op == "ne" else _negate(present)
    match target:
        case Scalar():
            return _scalar_compare(target, path, op, value)
        case Constant():
            if target.value is None:
                return sa.false()
            return _truth(_compare(path, target.value, op, value, target.case_exact))
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
