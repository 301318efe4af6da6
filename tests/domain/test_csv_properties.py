"""Properties of the CSV contract and the field rules, over generated files and values."""

import codecs
import io
import os
import string
import unicodedata
import unittest.mock
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roster.domain import csvfile, fields
from roster.domain.csv_export import restore
from roster.domain.fields import BY_COLUMN, BY_NAME, FIELDS, Field, Kind, check, clean, key
from tests.factories import COLUMNS, csv_bytes, csv_text, people, person

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQUIRED_COLUMNS = [f.column for f in FIELDS if f.required]
OPTIONAL_COLUMNS = [f.column for f in FIELDS if not f.required]

ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda text: text.encode(),
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode(),
    "utf-16-le with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}


def assert_well_formed(result: csvfile.CsvFile) -> None:
    if not result.readable:
        assert result.errors, result.issues
    for issue in result.issues:
        assert issue.row is None or (type(issue.row) is int and issue.row >= 1), issue
        assert issue.code and issue.message, issue
        assert issue.severity in ("error", "warning"), issue
    numbers = [r.row for r in result.rows]
    assert all(type(n) is int and n >= 2 for n in numbers), numbers
    assert len(set(numbers)) == len(numbers), numbers


def raw_of(field: Field, value: object) -> str:
    if value is None:
        return ""
    if field.kind is Kind.FLAG:
        return "1" if value else "0"
    assert isinstance(value, str)
    return value


def expected_value(column: str, raw: str) -> object:
    # Trimmed, less the escape an export puts before a cell a spreadsheet would run (one "'"
    # where quotes come before = + - @), trimmed again, composed.
    value = unicodedata.normalize("NFC", restore(raw.strip()).strip())
    if BY_COLUMN[column].kind is Kind.FLAG:
        return {"": None, "0": False, "1": True}[value]
    return value or None


# 1. Arbitrary bytes.

TOKENS = [
    b'"',
    b'""',
    b";",
    b'";"',
    b"\n",
    b"\r",
    b"\r\n",
    b" ",
    b",",
    b"\t",
    b"sep=;",
    b"sep=,",
    b"Jan",
    b"x@example.com",
    b"1",
    b"?",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    b"\x00",
    b"\xff",
    b"\xc3",
    "Ørsted".encode(),
    "\u202e".encode(),
    *(c.encode() for c in COLUMNS),
]
HEADER = csv_bytes([])

csvish_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda parts: HEADER + b"".join(parts)),
)


@settings(max_examples=400, deadline=None)
@given(csvish_bytes)
def test_any_bytes_give_a_located_answer_and_never_raise(data: bytes) -> None:
    assert_well_formed(csvfile.parse(data))


# 2. Damaged valid files.

PALETTE = [
    b'"',
    b";",
    b"\r",
    b"\n",
    b"\r\n",
    b'""',
    codecs.BOM_UTF8,
    b"\x00",
    b"sep=;\n",
    b",",
    b"\t",
    b" ",
    b"?",
    "ø".encode(),
    "\u202e".encode(),
    b"\xff",
    b"\xc3",
    b"<",
]


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    data = csv_bytes(
        people(draw(st.integers(0, 8))),
        quote=draw(st.booleans()),
        newline=draw(st.sampled_from(["\r\n", "\n"])),
    )
    for _ in range(draw(st.integers(1, 6))):
        operation = draw(
            st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate", "swap"])
        )
        at = draw(st.integers(0, len(data)))
        if operation == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)) :]
        elif operation == "insert":
            chunk = draw(st.one_of(st.sampled_from(PALETTE), st.binary(min_size=1, max_size=4)))
            data = data[:at] + chunk + data[at:]
        elif operation == "replace":
            chunk = draw(st.one_of(st.sampled_from(PALETTE), st.binary(min_size=1, max_size=1)))
            data = data[:at] + chunk + data[at + 1 :]
        elif operation == "truncate":
            data = data[:at]
        else:
            lines = data.splitlines(keepends=True)
            if not lines:
                continue
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if operation == "duplicate":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"".join(lines)
    return data


def line_count(data: bytes) -> int:
    try:
        text = "".join(csvfile.texts(io.BytesIO(data)))
    except csvfile.Undecodable:
        return 0
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def parsed_as_seen(result: csvfile.CsvFile) -> tuple[object, ...]:
    rows = [(r.row, dict(r.values), r.valid, r.username_key, r.email_key) for r in result.rows]
    return result.readable, result.columns, rows, result.issues


@settings(max_examples=300, deadline=None)
@given(damaged_files(), st.integers(1, 64))
def test_a_file_read_a_block_at_a_time_reads_as_one_text(data: bytes, block: int) -> None:
    whole = parsed_as_seen(csvfile.parse(data))
    with unittest.mock.patch.object(csvfile, "BLOCK", block):
        assert parsed_as_seen(csvfile.parse(data)) == whole


@settings(max_examples=400, deadline=None)
@given(damaged_files())
def test_damaged_files_never_raise_and_valid_rows_hold_valid_values(data: bytes) -> None:
    result = csvfile.parse(data)
    assert_well_formed(result)

    lines = line_count(data)
    row_numbers = {r.row for r in result.rows}
    for issue in result.issues:
        if issue.row is None:
            continue
        assert issue.row <= lines, (issue, lines)
        if result.readable and issue.row != 1:
            assert issue.row in row_numbers, (issue, sorted(row_numbers))

    usernames: set[str] = set()
    emails: set[str] = set()
    for row in result.rows if result.readable else []:
        if not row.valid:
            continue
        assert not [i for i in result.errors if i.row == row.row], row
        assert set(row.values) == set(result.columns), row
        for name, value in row.values.items():
            field = BY_NAME[name]
            assert check(field, raw_of(field, value)) == (value, None), (row, name)
        assert row.username_key == key(row.values["username"])
        assert row.email_key == key(row.values["email"])
        assert row.username_key not in usernames and row.email_key not in emails, row
        usernames.add(row.username_key)
        emails.add(row.email_key)


# 3. Round trip.

NAMES = [
    "van 't Hoff",
    "Ørsted",
    "Jansen, Jan",
    "Zoë Müller",
    "O'Brien",
    "José",
    "Nguyễn Thị",
    "Иван",
    "王伟",
    "Łódź-Żółć",
    "  Anne  ",
    "e\u0301mile",
]
SPECIAL = ';"'


def text_chars(*, specials: bool, spaces: bool = True) -> st.SearchStrategy[str]:
    return st.characters(
        categories=("L", "M", "N", "P", "S", "Zs") if spaces else ("L", "M", "N", "P", "S"),
        exclude_characters="<>?" + ("" if specials else SPECIAL),
    )


def valid(field: Field, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.filter(lambda v: check(field, v)[1] is None)


def plain(specials: bool) -> Callable[[str], bool]:
    return lambda v: specials or not any(c in v for c in SPECIAL)


def text_values(field: Field, specials: bool) -> st.SearchStrategy[str]:
    assert field.max_len is not None
    spaces = field.kind is not Kind.USERNAME
    alphabet = text_chars(specials=specials, spaces=spaces)
    generated = st.text(alphabet, min_size=1, max_size=field.max_len + 2)
    named = st.sampled_from(NAMES).map(lambda n: n if spaces else n.replace(" ", ""))
    mixed = st.builds(
        lambda a, b, s: a + s + b,
        st.sampled_from(NAMES),
        st.text(alphabet, max_size=6),
        st.sampled_from([*SPECIAL, ", ", "'", " "]),
    )
    return valid(field, st.one_of(named, mixed, generated).filter(plain(specials)))


phones = st.text("0123456789+-(). /", min_size=2, max_size=20)

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
dot_atoms = st.lists(st.text(ATEXT, min_size=1, max_size=10), min_size=1, max_size=3).map(".".join)
host_labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(host_labels, min_size=1, max_size=3),
    st.sampled_from(["com", "nl", "de", "org", "museum", "CO"]),
)
emails = st.one_of(
    st.builds(lambda local, host: f"{local}@{host}", dot_atoms, hostnames),
    st.sampled_from(
        ["jürgen@example.de", "ørsted@exämple.dk", "J.Jansen@Example.COM", " j@example.nl "]
    ),
)

IMAGE_EXTENSIONS = ["jpg", "JPEG", "png", "gif", "webp", "bmp", "tif", "heic", "avif"]
URL_CHARS = string.ascii_letters + string.digits + "-._~/?#[]@!$&'()*+,;=%"


def photos(specials: bool) -> st.SearchStrategy[str]:
    names = st.builds(
        lambda stem, ext: f"{stem}.{ext}",
        st.text(
            st.characters(categories=("L", "N", "P", "Zs"), exclude_characters='/\\<>"?'),
            min_size=1,
            max_size=20,
        ),
        st.sampled_from(IMAGE_EXTENSIONS),
    )
    links = st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "https", "HTTPS"]),
        hostnames,
        st.text(URL_CHARS, max_size=40),
    )
    return valid(BY_NAME["profile_photo"], st.one_of(names, links).filter(plain(specials)))


def column_values(column: str, specials: bool) -> st.SearchStrategy[str]:
    field = BY_COLUMN[column]
    strategy: st.SearchStrategy[str]
    match field.kind:
        case Kind.TEXT | Kind.USERNAME:
            strategy = text_values(field, specials)
        case Kind.PHONE:
            strategy = valid(field, phones)
        case Kind.EMAIL:
            strategy = valid(field, emails)
        case Kind.FLAG:
            strategy = st.sampled_from(["0", "1", " 1 "])
        case Kind.PHOTO:
            strategy = photos(specials)
    if not field.required:
        strategy = st.one_of(st.just(""), strategy)
    return strategy


def users(specials: bool = True) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({c: column_values(c, specials) for c in COLUMNS})


def user_lists(specials: bool = True, min_size: int = 0) -> st.SearchStrategy[list]:
    return st.lists(
        users(specials),
        min_size=min_size,
        max_size=6,
        unique_by=(
            lambda u: key(clean(u["CSV_USERNAME"])),
            lambda u: key(clean(u["CSV_EMAIL"])),
        ),
    )


@st.composite
def layouts(draw: st.DrawFn) -> list[str]:
    optional = draw(st.lists(st.sampled_from(OPTIONAL_COLUMNS), unique=True))
    return list(draw(st.permutations(REQUIRED_COLUMNS + optional)))


def write(
    rows: list[dict[str, str]],
    columns: list[str],
    *,
    encoding: str,
    newline: str,
    sep_hint: bool,
    quote: bool = True,
    sep: str = ";",
) -> bytes:
    text = csv_text(rows, columns=columns, quote=quote, newline=newline, sep=sep)
    if sep_hint:
        text = "sep=;" + newline + text
    return ENCODINGS[encoding](text)


def assert_round_trip(result: csvfile.CsvFile, rows: list[dict[str, str]], columns: list[str]):
    assert result.readable, result.issues
    assert not result.errors, result.errors
    assert result.columns == tuple(BY_COLUMN[c].name for c in columns)
    assert [r.row for r in result.rows] == list(range(2, len(rows) + 2))
    for parsed, row in zip(result.rows, rows, strict=True):
        assert parsed.valid
        assert parsed.values == {BY_COLUMN[c].name: expected_value(c, row[c]) for c in columns}


flavours = {
    "encoding": st.sampled_from(list(ENCODINGS)),
    "newline": st.sampled_from(["\r\n", "\n"]),
    "sep_hint": st.booleans(),
}


@FAST
@given(rows=user_lists(), columns=layouts(), **flavours)
def test_quoted_files_read_back_exactly_what_was_written(
    rows: list[dict[str, str]], columns: list[str], encoding: str, newline: str, sep_hint: bool
) -> None:
    data = write(rows, columns, encoding=encoding, newline=newline, sep_hint=sep_hint)
    result = csvfile.parse(data)
    assert_round_trip(result, rows, columns)
    assert not result.issues


@FAST
@given(rows=user_lists(specials=False), columns=layouts(), **flavours)
def test_unquoted_files_read_back_the_same_without_a_warning(
    rows: list[dict[str, str]], columns: list[str], encoding: str, newline: str, sep_hint: bool
) -> None:
    """A file that quotes no field (as Excel writes one) is as normal as one that quotes all."""
    data = write(rows, columns, encoding=encoding, newline=newline, sep_hint=sep_hint, quote=False)
    result = csvfile.parse(data)
    assert_round_trip(result, rows, columns)
    assert result.issues == []


# 4. Wrong separator.

SEPARATOR_WORDS = {",": "comma", "\t": "tab"}


@FAST
@given(
    rows=user_lists(specials=False),
    columns=layouts(),
    sep=st.sampled_from(list(SEPARATOR_WORDS)),
    quote=st.booleans(),
    encoding=st.sampled_from(list(ENCODINGS)),
    newline=st.sampled_from(["\r\n", "\n"]),
)
def test_comma_or_tab_separated_files_are_refused_naming_the_separator(
    rows: list[dict[str, str]],
    columns: list[str],
    sep: str,
    quote: bool,
    encoding: str,
    newline: str,
) -> None:
    data = write(
        rows, columns, encoding=encoding, newline=newline, sep_hint=False, quote=quote, sep=sep
    )
    result = csvfile.parse(data)
    assert not result.readable
    assert [(i.code, i.row) for i in result.issues] == [("wrong_separator", None)]
    assert SEPARATOR_WORDS[sep] in result.issues[0].message


# 5. Duplicates.

CASINGS: list[Callable[[str], str]] = [str.upper, str.lower, str.swapcase, str.title, str]


@FAST
@given(
    rows=user_lists(min_size=2),
    column=st.sampled_from(["CSV_USERNAME", "CSV_EMAIL"]),
    casing=st.sampled_from(CASINGS),
    data=st.data(),
)
def test_a_repeated_username_or_email_is_an_error_on_both_rows(
    rows: list[dict[str, str]],
    column: str,
    casing: Callable[[str], str],
    data: st.DataObject,
) -> None:
    first, second = data.draw(
        st.lists(st.integers(0, len(rows) - 1), min_size=2, max_size=2, unique=True)
    )
    original = rows[first][column]
    repeated = casing(original)
    if key(clean(repeated)) != key(clean(original)):
        repeated = original
    rows[second] = rows[second] | {column: repeated}

    result = csvfile.parse(csv_bytes(rows))

    name = BY_COLUMN[column].name
    flagged = {i.row for i in result.errors if i.code == f"duplicate_{name}" and i.column == column}
    assert flagged == {first + 2, second + 2}, result.issues
    invalid = {r.row for r in result.rows if not r.valid}
    assert invalid == {first + 2, second + 2}


# 6. Field rules.

LENGTH_RULED = [f for f in FIELDS if f.kind is not Kind.FLAG]
TEXT_LIKE = [f for f in FIELDS if f.kind in (Kind.TEXT, Kind.USERNAME, Kind.PHOTO)]
WHITESPACE = " \t\u00a0\u2003\u3000"
solid = st.characters(exclude_categories=("Z", "C"))


@settings(max_examples=300)
@given(field=st.sampled_from(LENGTH_RULED), data=st.data())
def test_values_outside_the_length_limits_are_too_short_or_too_long(
    field: Field, data: st.DataObject
) -> None:
    limit = field.max_len if field.max_len is not None else 300
    size = data.draw(st.integers(1, limit + 30), label="size")
    core = data.draw(st.text(solid, min_size=size, max_size=size), label="core")
    pad = data.draw(st.text(WHITESPACE, max_size=3), label="pad")
    value, problem = check(field, pad + core + pad)
    length = len(clean(core))
    if length < field.min_len:
        assert value is None and problem is not None
        assert problem.code == "too_short"
        assert str(field.min_len) in problem.message and str(length) in problem.message
    elif field.max_len is not None and length > field.max_len:
        assert value is None and problem is not None
        assert problem.code == "too_long"
        assert str(field.max_len) in problem.message and str(length) in problem.message
    else:
        assert problem is None or problem.code not in ("too_short", "too_long")


@settings(max_examples=200)
@given(field=st.sampled_from([f for f in FIELDS if f.kind is Kind.FLAG]), raw=st.text(max_size=4))
def test_flags_accept_only_1_or_0(field: Field, raw: str) -> None:
    value, problem = check(field, raw)
    match raw.strip():
        case "":
            assert (value, problem) == (None, None)
        case "1" | "0":
            assert (value, problem) == (raw.strip() == "1", None)
        case _:
            assert value is None and problem is not None and problem.code == "invalid_flag"


BAD_CHARACTERS = st.one_of(
    st.sampled_from(["<", ">", "\u202e", "\u202d", "\u200b", "\ufeff", "\u2028"]),
    st.characters(categories=("Cc",)),
)


@settings(max_examples=300)
@given(
    field=st.sampled_from(TEXT_LIKE),
    bad=BAD_CHARACTERS,
    before=st.text(string.ascii_letters, min_size=1, max_size=8),
    after=st.text(string.ascii_letters, min_size=1, max_size=8),
)
def test_markup_and_control_characters_are_invalid_characters(
    field: Field, bad: str, before: str, after: str
) -> None:
    if field.kind is Kind.PHOTO:
        after += ".jpg"
    value, problem = check(field, before + bad + after)
    assert value is None and problem is not None
    assert problem.code == "invalid_characters"
    if bad in "<>":
        assert f"'{bad}'" in problem.message
    else:
        assert f"U+{ord(bad):04X}" in problem.message


@settings(max_examples=300)
@given(field=st.sampled_from(FIELDS), raw=st.text(max_size=30), pad=st.text(WHITESPACE, max_size=3))
def test_values_are_trimmed(field: Field, raw: str, pad: str) -> None:
    padded = check(field, pad + raw + pad)
    assert padded == check(field, raw)
    value, problem = padded
    if isinstance(value, str):
        assert problem is None
        assert value == value.strip() == unicodedata.normalize("NFC", raw.strip())


# 7. The fast e-mail path agrees with email-validator.

tricky_local_parts = st.one_of(
    st.text(ATEXT + ".", min_size=1, max_size=12),
    st.text(ATEXT, min_size=60, max_size=70),
    st.sampled_from(['"a b"', '"quoted"', "jürgen", "a..b", ".a", "a.", "", "a b", "a\\b"]),
    st.text(max_size=4),
)
tricky_labels = st.one_of(
    st.text("abz09-", min_size=1, max_size=8),
    st.text("aZ9-", min_size=60, max_size=66),
    st.from_regex(r"[a-z0-9]{1,3}-{1,3}[a-z0-9]{0,3}", fullmatch=True),
    st.sampled_from(
        ["xn--zz", "ab--cd", "xn--bcher-kva", "a-", "-a", "", "exämple", "例子", "_a", "a_b"]
    ),
)
tricky_tlds = st.sampled_from(
    [
        "com",
        "nl",
        "co",
        "test",
        "TEST",
        "local",
        "Local",
        "localhost",
        "onion",
        "invalid",
        "arpa",
        "123",
        "c0m",
        "x",
        "museum",
        "xn--p1ai",
        "xn--zz",
        "a" * 63,
        "a" * 64,
        "例子",
    ]
)
tricky_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    tricky_local_parts,
    st.lists(tricky_labels, max_size=4),
    tricky_tlds,
)


def accepted_by_email_validator(address: str) -> bool:
    validator = fields._email_validator()  # as Roster configures it (its special-use domains)
    try:
        validator.validate_email(address, check_deliverability=False)
    except validator.EmailNotValidError:
        return False
    return True


@settings(max_examples=500)
@given(st.lists(st.one_of(tricky_emails, emails, st.just("a@b.localhost")), min_size=1))
def test_a_column_of_addresses_is_quick_exactly_when_each_is_plain(addresses: list[str]) -> None:
    column = BY_NAME["email"]
    assert fields.quick_column(column, addresses) == all(map(fields._plain_email, addresses))


@settings(max_examples=3000)
@given(st.one_of(tricky_emails, emails))
def test_fast_email_path_accepts_nothing_email_validator_rejects(address: str) -> None:
    if fields._plain_email(address):
        assert accepted_by_email_validator(address), address
    if address == address.strip() and len(address) >= 2:
        _, problem = check(BY_NAME["email"], address)
        assert (problem is None) == accepted_by_email_validator(address), (address, problem)


# 8. ASCII-only exports.


def damaged(name: str) -> str:
    return "".join(c if c.isascii() else "?" for c in name)


NON_ASCII_LETTERS = "äëïöüßøåæéèêçñłżśćńőűÅØÆÉÜÖÄŁŻαβγδЖИВАНлпр王伟李"
name_words = st.text(string.ascii_letters + NON_ASCII_LETTERS, min_size=1, max_size=8)
names_with_non_ascii = st.builds(
    lambda words, joins: "".join(w + j for w, j in zip(words, joins, strict=False)).strip("-' "),
    st.lists(name_words, min_size=1, max_size=3),
    st.lists(st.sampled_from([" ", "-", "'", " van "]), min_size=3, max_size=3),
).filter(lambda n: not n.isascii() and 2 <= len(n) <= 20 and n == n.strip())


def test_j_question_mark_rgen_is_a_suspect_encoding_warning() -> None:
    result = csvfile.parse(csv_bytes([person(1, CSV_FIRSTNAME="J?rgen")]))
    assert [(i.row, i.column, i.code, i.severity) for i in result.issues] == [
        (2, "CSV_FIRSTNAME", "suspect_encoding", "warning")
    ]
    assert result.rows[0].valid
    assert result.rows[0].values["first_name"] == "J?rgen"


@FAST
@given(
    name=names_with_non_ascii,
    column=st.sampled_from(["CSV_FIRSTNAME", "CSV_SURNAME", "CSV_DISPLAYNAME", "CSV_DEPARTMENT"]),
    position=st.integers(0, 4),
)
def test_names_that_lost_their_non_ascii_letters_are_flagged(
    name: str, column: str, position: int
) -> None:
    rows = people(5)
    rows[position] = rows[position] | {column: damaged(name)}
    result = csvfile.parse(csv_bytes(rows))
    assert [(i.row, i.column, i.code, i.severity) for i in result.issues] == [
        (position + 2, column, "suspect_encoding", "warning")
    ], (damaged(name), result.issues)
    assert all(r.valid for r in result.rows)

    rows[position] = rows[position] | {column: name}
    assert not csvfile.parse(csv_bytes(rows)).issues


@FAST
@given(hostnames, st.text(string.ascii_letters + string.digits + "=&", max_size=20))
def test_a_question_mark_in_a_photo_link_query_is_not_suspect(host: str, query: str) -> None:
    link = f"https://{host}/photos/jan.jpg?{query}"
    result = csvfile.parse(csv_bytes([person(1, CSV_PROFILEPHOTO=link)]))
    assert not result.issues, result.issues
    assert result.rows[0].values["profile_photo"] == link


@pytest.mark.parametrize("column", ["CSV_EMAIL", "CSV_PROFILEPHOTO"])
def test_a_question_mark_outside_names_is_not_suspect(column: str) -> None:
    value = {"CSV_EMAIL": "who?@example.com", "CSV_PROFILEPHOTO": "https://x.nl/a.png?s=2"}
    result = csvfile.parse(csv_bytes([person(1, **{column: value[column]})]))
    assert not result.issues, result.issues


QUICK_SAMPLES = st.one_of(
    st.text(string.printable, max_size=60),
    st.text("01 +-()./0123456789", max_size=25),
    st.from_regex(r"https?://[a-z0-9.-]{0,12}(:[0-9]{1,5})?(/[!-~]{0,20})?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9 ._()\-]{0,12}\.(jpe?g|png|gif|JPG|exe|svg)", fullmatch=True),
    st.from_regex(r"[a-z0-9.+_-]{0,10}@[a-z0-9.-]{0,12}\.[a-z]{1,4}", fullmatch=True),
)


@settings(max_examples=1500, deadline=None)
@given(field=st.sampled_from(FIELDS), raw=QUICK_SAMPLES)
def test_quick_path_accepts_only_what_the_full_rules_accept(field: Field, raw: str) -> None:
    value = raw.strip()
    if value and fields.quick(field, value):
        stored, problem = check(field, value)
        assert problem is None, (field.name, value, problem)
        assert stored == (value == "1" if field.kind is Kind.FLAG else value)


def test_a_value_with_doubled_quotes_and_a_line_break_is_one_value_at_any_block_edge() -> None:
    """A block never ends inside quotes, whatever the doubled quotes before the line break."""
    rows = [person(1), person(2, CSV_DISPLAYNAME='Say ""hi""\nthere'), person(3)]
    data = csv_text(rows).replace('Say """"hi""""', 'Say ""hi""').encode()
    whole = parsed_as_seen(csvfile.parse(data))
    assert [r.row for r in csvfile.parse(data).rows] == [2, 3, 4]
    for block in range(1, len(data) + 1):
        with unittest.mock.patch.object(csvfile, "BLOCK", block):
            assert parsed_as_seen(csvfile.parse(data)) == whole, block


def test_a_file_read_from_a_pipe_reads_as_its_bytes() -> None:
    """`roster import` on a pipe (`<(…)`, /dev/stdin): no size to ask for, the limit still holds."""
    data = csv_bytes(people(3))
    read, write = os.pipe()
    with os.fdopen(write, "wb") as sender:
        sender.write(data)
    with os.fdopen(read, "rb") as pipe:
        assert parsed_as_seen(csvfile.parse(pipe)) == parsed_as_seen(csvfile.parse(data))
    read, write = os.pipe()
    with os.fdopen(write, "wb") as sender:
        sender.write(data)
    with os.fdopen(read, "rb") as pipe:
        too_big = csvfile.parse(pipe, max_bytes=len(data) - 1)
    assert not too_big.readable and too_big.issues[0].code == "file_too_large"
