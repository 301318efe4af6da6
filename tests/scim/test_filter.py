"""The SCIM filter language: parsing, evaluation in memory and translation to SQL."""

import contextlib
import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from roster.store.filter_sql import Constant, Entry, Multi, Scalar, Target, to_sql
from roster.store.schema import UTCDateTime
from roster.store.scim_search import names_username
from roster.web.scim import users as scim_users
from roster.web.scim.filter import (
    MAX_NESTING,
    MAX_TERMS,
    And,
    AttrPath,
    Compare,
    FilterError,
    Not,
    Or,
    Path,
    Present,
    ValuePath,
    matches,
    parse,
    parse_path,
)
from roster.web.scim.listing import Params

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STATS = "urn:example:params:scim:schemas:extension:stats:1.0:User"


def attr(name: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    return AttrPath(schema, name, sub)


# Parsing


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ('userName eq "bjensen"', Compare(attr("userName"), "eq", "bjensen")),
        ('name.familyName co "O\'Malley"', Compare(attr("name", "familyName"), "co", "O'Malley")),
        ('userName SW "J"', Compare(attr("userName"), "sw", "J")),
        (
            f'{CORE}:userName sw "J"',
            Compare(attr("userName", schema=CORE), "sw", "J"),
        ),
        (
            f'{ENTERPRISE}:department eq "Sales"',
            Compare(attr("department", schema=ENTERPRISE), "eq", "Sales"),
        ),
        (
            f"{ENTERPRISE}:manager.displayName pr",
            Present(attr("manager", "displayName", ENTERPRISE)),
        ),
        ("title pr", Present(attr("title"))),
        ("members.$ref PR", Present(attr("members", "$ref"))),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            Compare(attr("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
        ),
        ('a eq "a\\"b\\\\c\\u00e9"', Compare(attr("a"), "eq", 'a"b\\cé')),
        ("a ge -1.5e2", Compare(attr("a"), "ge", -150.0)),
        ("a lt 42", Compare(attr("a"), "lt", 42)),
        ("a eq TRUE", Compare(attr("a"), "eq", True)),
        ("a ne false", Compare(attr("a"), "ne", False)),
        ("a eq null", Compare(attr("a"), "eq", None)),
        (
            'title pr and userType eq "Employee"',
            And(Present(attr("title")), Compare(attr("userType"), "eq", "Employee")),
        ),
        (
            "a pr or b pr and c pr",
            Or(Present(attr("a")), And(Present(attr("b")), Present(attr("c")))),
        ),
        (
            "a pr and b pr or c pr",
            Or(And(Present(attr("a")), Present(attr("b"))), Present(attr("c"))),
        ),
        (
            "(a pr or b pr) and c pr",
            And(Or(Present(attr("a")), Present(attr("b"))), Present(attr("c"))),
        ),
        (
            "a pr and b pr and c pr",
            And(And(Present(attr("a")), Present(attr("b"))), Present(attr("c"))),
        ),
        ("not (a pr)", Not(Present(attr("a")))),
        ("NOT(a pr)", Not(Present(attr("a")))),
        ("not pr", Present(attr("not"))),
        (
            'userType ne "Employee" and not (emails co "example.com" or '
            'emails.value co "example.org")',
            And(
                Compare(attr("userType"), "ne", "Employee"),
                Not(
                    Or(
                        Compare(attr("emails"), "co", "example.com"),
                        Compare(attr("emails", "value"), "co", "example.org"),
                    )
                ),
            ),
        ),
        (
            'emails[type eq "work" and value co "@example.com"] or '
            'ims[type eq "xmpp" and value co "@foo.com"]',
            Or(
                ValuePath(
                    attr("emails"),
                    And(
                        Compare(attr("type"), "eq", "work"),
                        Compare(attr("value"), "co", "@example.com"),
                    ),
                ),
                ValuePath(
                    attr("ims"),
                    And(
                        Compare(attr("type"), "eq", "xmpp"),
                        Compare(attr("value"), "co", "@foo.com"),
                    ),
                ),
            ),
        ),
        (
            'emails[type eq "work" or not (value ew ".org")]',
            ValuePath(
                attr("emails"),
                Or(
                    Compare(attr("type"), "eq", "work"),
                    Not(Compare(attr("value"), "ew", ".org")),
                ),
            ),
        ),
        (
            'phoneNumbers[type eq "mobile"].value sw "+31"',
            ValuePath(
                attr("phoneNumbers"),
                And(Compare(attr("type"), "eq", "mobile"), Compare(attr("value"), "sw", "+31")),
            ),
        ),
        ("  a   eq   1  ", Compare(attr("a"), "eq", 1)),
        ('(((a eq "x")))', Compare(attr("a"), "eq", "x")),
    ],
)
def test_parse(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", 'expected an attribute name, "(" or "not" at position 0', 0),
        ('userName xx "a"', 'expected an operator after "userName" at position 9', 9),
        ("userName", 'expected an operator after "userName" at position 8', 8),
        (
            "userName eq",
            'expected a value (a string, a number, true, false or null) after "eq"',
            11,
        ),
        ("userName eq bjensen", "expected a value", 12),
        ("(a pr", 'expected "and", "or" or ")" after "pr" at position 5', 5),
        ("a pr)", 'expected "and", "or" or the end of the filter after "pr" at position 4', 4),
        ("a pr b pr", 'expected "and", "or" or the end of the filter after "pr"', 5),
        ("a pr and", 'expected an attribute name, "(" or "not" after "and" at position 8', 8),
        ("emails[type pr", 'expected "and", "or" or "]" after "pr" at position 14', 14),
        ("emails[type[value pr]]", "a value filter cannot contain another value filter", 11),
        ('emails[type eq "work"]]', "expected", 22),
        ('a eq "abc', "unterminated string starting at position 5", 5),
        ('a eq "a\\qb"', "invalid string", 7),
        ('a eq "\\ud800"', "unpaired surrogate", 5),
        ('a eq "a\\nb"', "it contains a control character", 5),
        ('a eq "\x00"', "it contains a control character", 5),
        ('a eq "a\\u0000"', "it contains a control character", 5),
        ('a eq "\x9b"', "it contains a control character", 5),
        ("a eq 1e999", "number out of range at position 5", 5),
        ("a eq " + "9" * 5000, "number out of range", 5),
        ("a eq 1 # b", 'unexpected character "#" at position 7', 7),
        ("urn:x pr", "unexpected character", 3),
        ("name.givenName.x pr", 'expected an operator after "name.givenName"', 14),
        ('emails[type eq "work"].value', 'expected an operator after ".value"', 28),
        ("not (a pr", 'expected "and", "or" or ")"', 9),
    ],
)
def test_parse_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as raised:
        parse(text)
    assert message in raised.value.message
    assert raised.value.position == position
    assert raised.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("userName", Path(attr("userName"))),
        ("name.givenName", Path(attr("name", "givenName"))),
        (f"{ENTERPRISE}:manager", Path(attr("manager", schema=ENTERPRISE))),
        (f"{ENTERPRISE}:manager.value", Path(attr("manager", "value", ENTERPRISE))),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
            Path(
                attr("members"),
                Compare(attr("value"), "eq", "2819c223-7f76-453a-919d-413861904646"),
            ),
        ),
        (
            'addresses[type eq "work"].streetAddress',
            Path(attr("addresses"), Compare(attr("type"), "eq", "work"), "streetAddress"),
        ),
        (
            f'{CORE}:emails[type eq "work" and primary eq true].value',
            Path(
                attr("emails", schema=CORE),
                And(Compare(attr("type"), "eq", "work"), Compare(attr("primary"), "eq", True)),
                "value",
            ),
        ),
    ],
)
def test_parse_path(text: str, path: Path) -> None:
    assert parse_path(text) == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected an attribute name at position 0"),
        ("userName eq", 'expected "[" or the end of the path after "userName" at position 9'),
        ('emails[type eq "work"] x', 'expected ".subAttribute" or the end of the path'),
        ('emails[type eq "work"].value.x', 'expected the end of the path after ".value"'),
        ('emails[type eq "work"', 'expected "and", "or" or "]"'),
        ("emails[]", "expected an attribute name"),
    ],
)
def test_parse_path_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_path(text)
    assert message in raised.value.message
    assert raised.value.scim_type == "invalidPath"


def test_attribute_path_identity_ignores_case() -> None:
    one = parse(f'{ENTERPRISE.upper()}:Manager.VALUE eq "x"')
    other = parse(f'{ENTERPRISE}:manager.value eq "x"')
    assert isinstance(one, Compare) and isinstance(other, Compare)
    assert one.path != other.path
    assert one.path.key == other.path.key
    assert str(other.path) == f"{ENTERPRISE}:manager.value"


@pytest.mark.parametrize(
    "text",
    [
        "(" * 10_000 + "a pr" + ")" * 10_000,
        "not (" * 10_000 + "a pr" + ")" * 10_000,
        "(" * (MAX_NESTING + 1) + "a pr" + ")" * (MAX_NESTING + 1),
        " and ".join(["a pr"] * (MAX_TERMS + 1)),
    ],
)
def test_deep_or_huge_filters_are_refused(text: str) -> None:
    with pytest.raises(FilterError, match=r"nested more than|more than \d+ conditions"):
        parse(text)


def test_value_filters_do_not_nest() -> None:
    with pytest.raises(FilterError, match="cannot contain another value filter at position 13"):
        parse("emails[" * 10_000)


# Never anything but FilterError

FRAGMENTS = [
    '"',
    "\\",
    "(",
    ")",
    "[",
    "]",
    ".",
    ":",
    " ",
    "not",
    " and ",
    " or ",
    " eq ",
    " pr",
    " gt ",
    "urn:",
    "\\u",
    "\\ud800",
    "1e999",
    "-",
    "9" * 5000,
    "true",
    "null",
    "é",
    "\x00",
    "$",
]
VALID = [
    'userName eq "bjensen"',
    'emails[type eq "work" and value co "@example.com"] or not (title pr)',
    f'{ENTERPRISE}:department sw "Sal" and active eq true',
    'meta.lastModified gt "2026-01-01T00:00:00Z" or urn:x:y:logins le 3.5',
    'phoneNumbers[type eq "mobile"].value sw "+31"',
    'a eq "x\\"y" and (b ne null or c lt -1)',
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "duplicate", "replace"]))
        end = draw(st.integers(at, min(len(text), at + 8)))
        if kind == "insert":
            piece = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3))
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[end:]
        elif kind == "duplicate":
            text = text[:end] + text[at:end] + text[end:]
        else:
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def only_filter_errors(text: str, resource: Any, engine: sa.Engine) -> None:
    try:
        node = parse(text)
    except FilterError:
        return
    for run in (
        lambda: matches(node, resource),
        lambda: matches(node, RESOURCES[0], case_exact=lambda path: True),
        lambda: select_ids(engine, node),
    ):
        with contextlib.suppress(FilterError):
            run()


@FAST
@given(text=st.text() | st.text(alphabet='aeqnotrpsu:."\\()[]-+ 019eE$'))
@example(text="")
@example(text='"')
@example(text="urn:::::::a")
def test_parse_raises_only_filter_error_on_any_text(text: str) -> None:
    for function in (parse, parse_path):
        try:
            function(text)
        except FilterError as error:
            assert error.position is None or 0 <= error.position <= len(text)


@FAST
@given(text=mutated(), resource=st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_mutated_filters_raise_only_filter_error(
    database: sa.Engine, text: str, resource: dict[str, Any]
) -> None:
    only_filter_errors(text, resource, database)
    with contextlib.suppress(FilterError):
        parse_path(text)


# In memory

BARBARA: dict[str, Any] = {
    "schemas": [CORE, ENTERPRISE],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {"familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "loginCount": 42,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [
        {"value": "555-555-5555", "type": "work"},
        {"value": "555-555-4444", "type": "mobile"},
    ],
    "groups": [],
    "nickName": None,
    "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
    ENTERPRISE: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915", "displayName": "John Smith"},
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "BJENSEN@example.com"', True),
        ('USERNAME Eq "bjensen@example.com"', True),
        ('userName ne "bjensen@example.com"', False),
        ('name.familyName co "ENS"', True),
        ('NAME.GIVENNAME sw "bar"', True),
        ('name.givenName ew "x"', False),
        ("title pr", True),
        ("nickName pr", False),
        ("groups pr", False),
        ("emails pr", True),
        ('emails[type eq "work" and value co "@example.com"]', True),
        ('emails[type eq "home" and value co "@example.com"]', False),
        ('emails[value eq "BJENSEN@example.com"]', True),
        ("emails[primary eq true].value", None),
        ('emails[primary eq true].value ew "EXAMPLE.com"', True),
        ('emails.value co "jensen.org"', True),
        ('emails co "jensen.org"', True),
        ('emails.type eq "mobile"', False),
        ('phoneNumbers.type eq "mobile"', True),
        ('emails.value ne "babs@jensen.org"', True),
        (f'{ENTERPRISE}:department eq "tour operations"', True),
        (f'{ENTERPRISE.upper()}:DEPARTMENT eq "Tour Operations"', True),
        (f'{ENTERPRISE}:manager.displayName sw "John"', True),
        (f"{ENTERPRISE}:userName pr", False),
        ("department pr", False),
        (f'{CORE}:userName sw "bj"', True),
        ("urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr", False),
        ('urn:example:other:1.0:User:title eq "Tour Guide"', False),
        ('meta.lastModified gt "2011-05-13T04:42:33Z"', True),
        ('meta.lastModified gt "2011-05-13T06:00:00+02:00"', True),
        ('meta.lastModified eq "2011-05-13T05:42:34+01:00"', True),
        ('meta.lastModified lt "2011-05-13T05:42:34+01:00"', False),
        ('meta.lastModified le "2011-05-13T05:42:34+01:00"', True),
        ("loginCount gt 41", True),
        ("loginCount le 41.5", False),
        ("loginCount eq 42.0", True),
        ('loginCount eq "42"', False),
        ('title gt "TOUR"', True),
        ('title lt "a"', False),
        ("active eq true", True),
        ("active ne false", True),
        ("not (active eq false)", True),
        ('active eq "true"', False),
        (
            'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
            True,
        ),
        (
            'userType ne "Employee" and not (emails co "example.com" or '
            'emails.value co "example.org")',
            False,
        ),
        ("title eq null", False),
        ("nickName eq null", True),
        ("nickName ne null", False),
        (f'schemas eq "{ENTERPRISE}"', True),
        ('groups eq "x"', False),
        ('displayName eq "Babs Jensen" or missing pr and title pr', True),
        ('(displayName eq "Babs Jensen" or title pr) and missing pr', False),
    ],
)
def test_matches(text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(FilterError):
            parse(text)
        return
    assert matches(parse(text), BARBARA) is expected


def test_matches_honours_case_exact() -> None:
    asked: list[AttrPath] = []

    def case_exact(path: AttrPath) -> bool:
        asked.append(path)
        return path.key[1:] in {("username", None), ("emails", "value")}

    assert not matches(parse('userName eq "BJENSEN@example.com"'), BARBARA, case_exact)
    assert matches(parse('userName eq "bjensen@example.com"'), BARBARA, case_exact)
    assert not matches(parse('emails[value sw "BJ"]'), BARBARA, case_exact)
    assert matches(parse('emails[value sw "bj"]'), BARBARA, case_exact)
    assert matches(parse('title eq "tour guide"'), BARBARA, case_exact)
    assert attr("emails", "value") in asked


def test_matches_datetimes_given_as_datetime_objects() -> None:
    resource = {"meta": {"lastModified": datetime(2026, 3, 1, 12, tzinfo=UTC)}}
    assert matches(parse('meta.lastModified gt "2026-03-01T13:00:00+02:00"'), resource)
    with pytest.raises(FilterError, match="date-time"):
        matches(parse('meta.lastModified gt "March"'), resource)


@pytest.mark.parametrize(
    "text",
    [
        "active gt true",
        "active le false",
        'active gt "a"',
        "title co 5",
        "title sw true",
        "title gt null",
        "title co null",
        'missing pr or active gt "x"',
    ],
)
def test_matches_invalid_comparisons(text: str) -> None:
    with pytest.raises(FilterError):
        matches(parse(text), BARBARA)


# SQL

people_metadata = sa.MetaData()
people = sa.Table(
    "people",
    people_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(50), nullable=False),
    sa.Column("username_key", sa.String(200), nullable=False),
    sa.Column("external_id", sa.String(50)),
    sa.Column("first_name", sa.String(50)),
    sa.Column("title", sa.String(50)),
    sa.Column("email", sa.String(100)),
    sa.Column("phone", sa.String(30)),
    sa.Column("mobile", sa.String(30)),
    sa.Column("active", sa.Boolean),
    sa.Column("logins", sa.Integer),
    sa.Column("department", sa.String(50)),
    sa.Column("manager", sa.String(50)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


def person(**values: Any) -> dict[str, Any]:
    row = {column.name: None for column in people.columns}
    row.update(values, username_key=values["username"].casefold())
    return row


ROWS = [
    person(
        id=1,
        username="JanJ",
        external_id="abc",
        first_name="Jan",
        title="Boss",
        email="jan@example.com",
        phone="+31 20 555 0101",
        mobile="+31 6 5550 0101",
        active=True,
        logins=10,
        department="Sales",
        manager="Abc-1",
        updated_at=datetime(2026, 2, 1, tzinfo=UTC),
    ),
    person(
        id=2,
        username="piet",
        external_id="ABC",
        first_name="Piet",
        email="piet@EXAMPLE.org",
        mobile="+32 470 55 01 02",
        active=False,
        logins=3,
        department="50% off",
        manager="abc-1",
        updated_at=datetime(2025, 12, 31, 23, tzinfo=UTC),
    ),
    person(
        id=3,
        username="ann_lee",
        first_name="Ann",
        title="",
        email="ann@example.COM",
        phone="+31 30 555 0103",
        department="500 off",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    ),
    person(
        id=4,
        username="Kees",
        external_id="abcd",
        title="5_0 club",
        email="",
        phone="",
        mobile="+31 6 5550 0104",
        active=True,
        logins=0,
        updated_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
    ),
    person(
        id=5,
        username="O'Malley",
        first_name="Siobhan",
        title="500 club",
        email="siobhan@example.net",
        active=True,
        logins=7,
        department="Support",
        manager="X_1",
        updated_at=datetime(2025, 6, 1, tzinfo=UTC),
    ),
]
ALL = {row["id"] for row in ROWS}

c = people.c
SCALARS: dict[tuple[str | None, str, str | None], Scalar] = {
    (None, "username", None): Scalar(c.username, "string", key=c.username_key, fold=str.casefold),
    (None, "externalid", None): Scalar(c.external_id, "string", case_exact=True),
    (None, "name", "givenname"): Scalar(c.first_name, "string"),
    (None, "title", None): Scalar(c.title, "string"),
    (None, "active", None): Scalar(c.active, "boolean"),
    (None, "meta", "lastmodified"): Scalar(c.updated_at, "datetime"),
    (ENTERPRISE.lower(), "department", None): Scalar(c.department, "string"),
    (ENTERPRISE.lower(), "manager", "value"): Scalar(c.manager, "reference"),
    (STATS.lower(), "logins", None): Scalar(c.logins, "integer"),
}


def filled(column: sa.Column[Any]) -> sa.ColumnElement[bool]:
    return sa.and_(column.is_not(None), column != "")


MULTI = {
    "emails": Multi(
        (Entry(filled(c.email), {"value": Scalar(c.email, "string"), "Type": Constant("work")}),)
    ),
    "phonenumbers": Multi(
        (
            Entry(filled(c.phone), {"value": Scalar(c.phone, "string"), "type": Constant("work")}),
            Entry(
                filled(c.mobile), {"value": Scalar(c.mobile, "string"), "type": Constant("mobile")}
            ),
        )
    ),
}


def resolve(path: AttrPath) -> Target:
    schema, name, sub = path.key
    if schema == CORE.lower():
        schema = None
    if schema is None and name in MULTI:
        return MULTI[name]
    found = SCALARS.get((schema, name, sub))
    if found is None:
        raise FilterError(f"unknown attribute {path}")
    return found


def case_exact(path: AttrPath) -> bool:
    return path.key[1:] in {("externalid", None), ("manager", "value")}


def resource(row: dict[str, Any]) -> dict[str, Any]:
    """The SCIM representation of a row, leaving out what is null."""
    when = row["updated_at"].isoformat().replace("+00:00", "Z")
    phones = [
        {"value": row[column], "type": kind}
        for column, kind in (("phone", "work"), ("mobile", "mobile"))
        if row[column]
    ]
    out: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE, STATS],
        "id": str(row["id"]),
        "userName": row["username"],
        "externalId": row["external_id"],
        "name": {"givenName": row["first_name"]} if row["first_name"] is not None else None,
        "title": row["title"],
        "emails": [{"value": row["email"], "type": "work"}] if row["email"] else None,
        "phoneNumbers": phones or None,
        "active": row["active"],
        "meta": {"lastModified": when},
        ENTERPRISE: {
            "department": row["department"],
            "manager": {"value": row["manager"]} if row["manager"] is not None else None,
        },
        STATS: {"logins": row["logins"]},
    }
    return {key: value for key, value in out.items() if value is not None}


RESOURCES = [resource(row) for row in ROWS]


@pytest.fixture(scope="module")
def database() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    people_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), ROWS)
    yield engine
    engine.dispose()


def select_ids(engine: sa.Engine, node: Any) -> set[int]:
    query = sa.select(people.c.id).where(to_sql(node, resolve))
    with engine.connect() as conn:
        return set(conn.scalars(query))


def memory_ids(node: Any) -> set[int]:
    return {
        row["id"]
        for row, data in zip(ROWS, RESOURCES, strict=True)
        if matches(node, data, case_exact)
    }


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('userName eq "JANJ"', {1}),
        ('userName ne "JANJ"', ALL - {1}),
        (f'{CORE}:USERNAME eq "o\'malley"', {5}),
        ('userName sw "k"', {4}),
        ('userName co "_"', {3}),
        ('externalId eq "abc"', {1}),
        ('externalId eq "ABC"', {2}),
        ('externalId sw "ab"', {1, 4}),
        ('externalId co "B"', {2}),
        ('externalId ew "bc"', {1}),
        ('externalId gt "ABC"', {1, 4}),
        (f'{ENTERPRISE}:manager.value eq "abc-1"', {2}),
        (f'{ENTERPRISE}:manager.value co "_"', {5}),
        ('name.givenName eq "JAN"', {1}),
        ('emails[type eq "work" and value co "@EXAMPLE.com"]', {1, 3}),
        ('emails[type eq "home"]', set()),
        ('emails.value ew ".ORG"', {2}),
        ('emails co "@example"', {1, 2, 3, 5}),
        ("emails pr", {1, 2, 3, 5}),
        ("emails eq null", {4}),
        ('phoneNumbers[type eq "mobile"].value sw "+31"', {1, 4}),
        ('phoneNumbers[type eq "mobile" and value sw "+31"]', {1, 4}),
        ('phoneNumbers[type eq "work" and value sw "+31"]', {1, 3}),
        ('phoneNumbers.value sw "+32"', {2}),
        ('phoneNumbers.type eq "mobile"', {1, 2, 4}),
        ('phoneNumbers[type eq "fax"]', set()),
        ("phoneNumbers pr", {1, 2, 3, 4}),
        ("not (phoneNumbers pr)", {5}),
        ("active eq true", {1, 4, 5}),
        ("active eq false", {2}),
        ("not (active eq true)", {2, 3}),
        ("active ne true", {2}),
        ("active pr", {1, 2, 4, 5}),
        ("title pr", {1, 4, 5}),
        ('title eq ""', {3}),
        ("title eq null", {2, 3}),
        ('not (title eq "boss")', ALL - {1}),
        ('userName eq "piet" or title pr and active eq true', {1, 2, 4, 5}),
        ('(userName eq "piet" or title pr) and active eq true', {1, 4, 5}),
        ('meta.lastModified gt "2026-01-01T00:00:00Z"', {1, 4}),
        ('meta.lastModified ge "2026-01-01T01:00:00+01:00"', {1, 3, 4}),
        ('meta.lastModified lt "2026-01-01"', None),
        ('meta.lastModified eq "2026-01-01T00:00:00"', {3}),
        (f"{STATS}:logins ge 7", {1, 5}),
        (f"{STATS}:logins lt 3.5", {2, 4}),
        (f"{STATS}:logins eq 0", {4}),
        (f'{ENTERPRISE}:department co "50%"', {2}),
        (f'{ENTERPRISE}:department co "50"', {2, 3}),
        ('title co "5_"', {4}),
        ('title sw "5_"', {4}),
        ('title co "\\\\"', set()),
        ("userName eq \"x' OR '1'='1\"", set()),
        ("title co \"x' OR '1'='1\"", set()),
    ],
)
def test_to_sql_selects(database: sa.Engine, text: str, ids: set[int] | None) -> None:
    node = parse(text)
    if ids is None:
        with pytest.raises(FilterError, match="date-time"):
            to_sql(node, resolve)
        return
    assert select_ids(database, node) == ids
    assert memory_ids(node) == ids


def test_case_insensitive_equality_uses_the_key_column() -> None:
    sql = str(sa.select(people.c.id).where(to_sql(parse('userName eq "JANJ"'), resolve)))
    assert "people.username_key =" in sql
    assert "lower" not in sql


def test_values_are_bound_parameters(database: sa.Engine) -> None:
    attack = "x' OR '1'='1"
    for text in (
        f"userName eq {json.dumps(attack)}",
        f"title co {json.dumps(attack)}",
        f"externalId sw {json.dumps(attack)}",
        f"meta.lastModified gt {json.dumps(attack)}",
    ):
        try:
            condition = to_sql(parse(text), resolve)
        except FilterError:
            assert text.startswith("meta.")
            continue
        for dialect in (database.dialect, postgresql.dialect()):
            compiled = sa.select(people.c.id).where(condition).compile(dialect=dialect)
            assert "'1'='1" not in str(compiled)
            params = compiled.params.values()
            assert any(attack.casefold() in str(value).casefold() for value in params)
        assert select_ids(database, parse(text)) == set()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('nickName eq "x"', "unknown attribute nickName"),
        ("emails.primary eq true", "unknown attribute emails.primary"),
        ('emails[display eq "x"]', "unknown attribute emails.display"),
        ('emails[value.x eq "x"]', "unknown attribute"),
        ('active eq "true"', "expected true or false"),
        ("active gt true", "boolean"),
        ('active co "t"', "cannot be used"),
        ('meta.lastModified gt "yesterday"', "date-time"),
        ("meta.lastModified gt 5", "date-time"),
        (f'{STATS}:logins co "1"', "cannot be used"),
        (f'{STATS}:logins eq "1"', "expected a number"),
        (f"{STATS}:logins eq 99999999999999999999", "out of range"),
        ("userName eq 5", "expected a string"),
        ("userName gt null", "null"),
        ("title co 5", "string value"),
        ("phoneNumbers.type gt true", "boolean"),
    ],
)
def test_to_sql_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        to_sql(parse(text), resolve)


def test_scalar_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        Scalar(people.c.title, "text")


def test_deepest_and_widest_filters_run(database: sa.Engine) -> None:
    deep = (
        'phoneNumbers[type eq "mobile" and (value co "1" or '
        '(value co "2" and not (value co "3" or type pr)))]'
    )
    for level in range(MAX_NESTING - 4):
        deep = f"title pr {'and' if level % 2 else 'or'} ({deep})"
    wide = " or ".join([f'not (phoneNumbers.value co "{n}")' for n in range(MAX_TERMS)])
    for text in (deep, wide):
        node = parse(text)
        assert select_ids(database, node) == memory_ids(node)
    with pytest.raises(FilterError, match="nested more than"):
        parse(f"title pr and ({deep})")


# Agreement between matches() and to_sql()


def any_case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


STRING_ATTRIBUTES = [
    "userName",
    "USERNAME",
    f"{CORE}:userName",
    "externalId",
    "title",
    "name.givenName",
    "emails",
    "emails.value",
    "phoneNumbers.value",
    "phoneNumbers.type",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:manager.value",
]
WORDS = [
    "janj",
    "JanJ",
    "PIET",
    "a",
    "J",
    "o'malley",
    "50%",
    "5_",
    "%",
    "_",
    "\\",
    "@example.com",
    "@EXAMPLE",
    "+31",
    "+3",
    " ",
    "",
    "abc",
    "ABC",
    "abc-1",
    "Abc-1",
    "X_1",
    "mobile",
    "work",
    "off",
    "club",
    "x' OR '1'='1",
]
STRING_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
ORDER_OPS = ["eq", "ne", "gt", "ge", "lt", "le"]
DATES = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T01:00:00+01:00",
    "2025-12-31T23:00:00Z",
    "2026-02-01T00:00:00.000001Z",
    "2025-06-01T00:00:00",
]
PRESENCE = [
    *STRING_ATTRIBUTES,
    "active",
    "meta.lastModified",
    f"{STATS}:logins",
    "phoneNumbers",
]


def word_value() -> st.SearchStrategy[str]:
    return st.sampled_from(WORDS).map(json.dumps)


def compare(
    attrs: list[str], ops: list[str], values: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(attrs), st.sampled_from(ops).flatmap(any_case), values).map(
        " ".join
    )


def inner_atoms() -> st.SearchStrategy[str]:
    return compare(["type", "value", "VALUE"], STRING_OPS, word_value()) | st.sampled_from(
        ["value pr", "type pr", 'type eq "mobile"', 'type eq "work"']
    )


def inner_filters() -> st.SearchStrategy[str]:
    return st.recursive(
        inner_atoms(),
        lambda inner: (
            st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map("".join)
            | inner.map("not ({})".format)
        ),
        max_leaves=3,
    )


atoms = st.one_of(
    compare(STRING_ATTRIBUTES, STRING_OPS, word_value()),
    compare(["active"], ["eq", "ne"], st.sampled_from(["true", "false"])),
    compare([f"{STATS}:logins"], ORDER_OPS, st.sampled_from(["-1", "0", "3", "7", "7.5", "10"])),
    compare(["meta.lastModified"], ORDER_OPS, st.sampled_from(DATES).map(json.dumps)),
    st.sampled_from(PRESENCE).map("{} pr".format),
    compare(PRESENCE, ["eq", "ne"], st.just("null")),
    st.tuples(st.sampled_from(["emails", "phoneNumbers"]), inner_filters()).map(
        "{0[0]}[{0[1]}]".format
    ),
    st.tuples(inner_filters(), st.sampled_from(STRING_OPS), word_value()).map(
        lambda parts: f"phoneNumbers[{parts[0]}].value {parts[1]} {parts[2]}"
    ),
)

filters = st.recursive(
    atoms,
    lambda inner: (
        st.tuples(inner, st.sampled_from([" and ", " or ", " AND ", " Or "]), inner).map("".join)
        | inner.map("not ({})".format)
        | inner.map("({})".format)
    ),
    max_leaves=6,
)


@FAST
@given(text=filters)
def test_matches_and_to_sql_agree(database: sa.Engine, text: str) -> None:
    node = parse(text)
    assert select_ids(database, node) == memory_ids(node), text


@given(
    letters=st.text(alphabet=string.ascii_letters + string.digits + "%_\\'@ .+-", max_size=6),
    op=st.sampled_from(["co", "sw", "ew"]),
)
@FAST
def test_like_patterns_match_literally(database: sa.Engine, letters: str, op: str) -> None:
    for name in ("title", "externalId", f"{ENTERPRISE}:department", "phoneNumbers.value"):
        node = parse(f"{name} {op} {json.dumps(letters)}")
        assert select_ids(database, node) == memory_ids(node)


@given(
    username=st.text(max_size=40),
    spaces=st.tuples(*(st.sampled_from(["", " ", "  ", "\t"]) for _ in range(4))),
    attr=st.sampled_from(["userName", "USERNAME", "username"]),
    op=st.sampled_from(["eq", "EQ", "Eq", "co"]),
)
def test_the_plain_username_lookup_reads_as_the_parser_does(
    username: str, spaces: tuple[str, ...], attr: str, op: str
) -> None:
    """The `userName eq "…"` a provider sends is read without the parser when plain; the
    answer is the parser's, whatever the text."""
    quoted = json.dumps(username, ensure_ascii=False)
    text = f"{spaces[0]}{attr}{spaces[1] or ' '}{op}{spaces[2] or ' '}{quoted}{spaces[3]}"
    try:
        node = parse(text)
        expected = (
            node.value
            if isinstance(node, Compare) and node.op == "eq" and names_username(node.path)
            else None
        )
    except FilterError:
        expected = None
    assert scim_users._sought_username(Params(filter=text)) == expected
