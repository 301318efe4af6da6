"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): parse, and evaluate in memory.

`parse` turns filter text into an immutable tree (domain.filter_tree), and `matches` evaluates
the tree against a SCIM JSON resource; the store makes SQL of the same tree
(store.filter_sql). Attribute names, operators and literals are case-insensitive. Error
positions are 0-based character offsets into the text.

Beyond the RFC grammar, `attr[filter].sub op value` is accepted in filters (some clients send it)
and means `attr[filter and sub op value]`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, assert_never

from roster.domain.fields import KEY_WIDTH, has_control, key
from roster.domain.filter_tree import (
    And,
    AttrPath,
    Compare,
    FilterError,
    Node,
    Not,
    Op,
    Or,
    Path,
    Present,
    Value,
    ValuePath,
    as_datetime,
    check_value,
    compare,
    present,
    walk,
)

__all__ = [
    "And", "AttrPath", "Compare", "FilterError", "Node", "Not", "Or", "Path", "Present", "Value",
    "ValuePath", "candidates", "matches", "parse", "parse_path", "walk",
]  # fmt: skip

MAX_NESTING = 24
MAX_TERMS = 200
CORE_SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:core:"

_OPERATORS: dict[str, Op] = {
    op: op for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
}
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}


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
            return any(present(value) for value in _values(resource, path))
        case Compare(path, op, value):
            values = _values(resource, path)
            if value is None:
                return any(present(item) for item in values) == (op == "ne")
            exact = case_exact(path)
            return any([compare(path, item, op, value, exact) for item in _scalars(values)])
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
            check_value(item.path, item.op, item.value)
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
        and as_datetime(node.value) is None
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
