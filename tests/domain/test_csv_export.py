"""What every CSV Roster writes: the template's dialect, no cell a spreadsheet would run, and an
escape the template's reader takes off again, so the user list reads back as it was stored."""

import codecs
import csv
import io
import unittest.mock

from hypothesis import given
from hypothesis import strategies as st

from roster.domain import csv_export, csvfile, user_list
from roster.domain.csv_export import neutralize, restore
from roster.domain.fields import BY_NAME, FIELD_NAMES, FIELDS, check, key
from tests.domain.test_csv_properties import FAST, users

RUNNABLE = ("=", "+", "-", "@", "\t", "\r")
USERNAME, EMAIL = FIELD_NAMES.index("username"), FIELD_NAMES.index("email")
# Text as people type it, with the starts a spreadsheet runs and the quotes of the escape.
starts = st.sampled_from(["", *RUNNABLE, "'", "'=", "''+", "'-", "' ", "'a"])
texts = st.builds(lambda start, rest: start + rest, starts, st.text(max_size=12))


@given(texts)
def test_what_the_reader_restores_is_what_was_written(value: str) -> None:
    assert restore(neutralize(value)) == value


@given(texts)
def test_no_written_cell_starts_what_a_spreadsheet_runs(value: str) -> None:
    assert not neutralize(value).startswith(RUNNABLE)


def test_the_escape_is_one_quote_before_quotes_and_a_runnable_start() -> None:
    assert neutralize("+31 6 12345678") == "'+31 6 12345678"
    assert neutralize("'=SUM(A1)") == "''=SUM(A1)"  # a value that truly starts with '=
    assert restore("'+31 6 12345678") == "+31 6 12345678"
    assert restore("''=SUM(A1)") == "'=SUM(A1)"
    for value in ("'plain", "van 't Hoff", "'", "' =x", "O'Brien"):  # no escape: read as is
        assert restore(value) == value and neutralize(value) == value


def test_cells_are_quoted_separated_by_semicolons_with_crlf_and_a_bom_first() -> None:
    data = csv_export.encoded([("a", None, 3, 'say "hi"; bye')], first=True)
    assert data == codecs.BOM_UTF8 + b'"a";"";"3";"say ""hi""; bye"\r\n'
    assert csv_export.encoded([("a",)]) == b'"a"\r\n'


def read(data: bytes) -> csvfile.CsvFile:
    result = csvfile.parse(data)
    assert result.readable and not result.issues, result.issues
    return result


def test_the_reader_takes_off_the_export_s_escape_in_every_column() -> None:
    header = '"CSV_USERNAME";"CSV_FIRSTNAME";"CSV_SURNAME";"CSV_DISPLAYNAME";"CSV_EMAIL"\r\n'
    rows = ['"\'=jan";"Jan";"\'-Jansen"', '"\'\'@piet";"\'Piet";"van \'t Hoff"']
    data = header + "".join(f'{row};"Name";"u{n}@example.com"\r\n' for n, row in enumerate(rows))
    result = read(data.encode())
    got = [(r.values["username"], r.values["first_name"], r.values["surname"]) for r in result.rows]
    assert got == [("=jan", "Jan", "-Jansen"), ("'@piet", "'Piet", "van 't Hoff")]
    assert [r.username_key for r in result.rows] == ["=jan", "'@piet"]
    # Unquoted, as Excel saves a file: the same.
    excel = "CSV_USERNAME;CSV_FIRSTNAME;CSV_SURNAME;CSV_DISPLAYNAME;CSV_EMAIL\r\n"
    excel += "'+kees;Kees;'-Bakker;Name;kees@example.com\r\n"
    (row,) = read(excel.encode()).rows
    assert (row.values["username"], row.values["surname"]) == ("+kees", "-Bakker")


def stored(row: dict[str, str]) -> list[object]:
    """The values the template's rules store for a row of raw cells, in the columns' order."""
    values = []
    for name in FIELD_NAMES:
        value, problem = check(BY_NAME[name], row[BY_NAME[name].column])
        assert problem is None, (name, row)
        values.append(value)
    return values


def runnable(row: dict[str, str], start: str) -> dict[str, str]:
    """The row with `start` before each text value that the rules still accept with it."""
    changed = dict(row)
    for field in FIELDS:
        candidate = start + row[field.column].strip()
        if row[field.column].strip() and check(field, candidate)[1] is None:
            changed[field.column] = candidate
    return changed


@FAST
@given(st.lists(st.tuples(users(), st.sampled_from(["", "=", "+", "-", "@", "'=", "''-"]))))
def test_a_user_list_reads_back_as_stored(people: list[tuple[dict[str, str], str]]) -> None:
    """Users whose values start as a spreadsheet would run them, or with the escape's own quote,
    come back from the written file exactly as they were stored."""
    unique, seen = [], set()  # the directory keeps usernames and addresses unique
    for row, start in people:
        values = stored(runnable(row, start))
        keys = {("username", key(values[USERNAME])), ("email", key(values[EMAIL]))}
        if not keys & seen:
            seen |= keys
            unique.append(values)
    data = csv_export.encoded([user_list.COLUMNS, *map(user_list.cells, unique)], first=True)
    result = read(data)
    assert [[r.values[name] for name in FIELD_NAMES] for r in result.rows] == unique
    assert all(r.valid for r in result.rows)
    with unittest.mock.patch.object(csvfile, "BLOCK", 64):  # the escape seen in any block
        in_blocks = read(data)
    assert [[r.values[name] for name in FIELD_NAMES] for r in in_blocks.rows] == unique


def test_the_user_list_s_header_is_the_template_s() -> None:
    data = csv_export.encoded([user_list.COLUMNS], first=True)
    assert data.decode("utf-8-sig") == csvfile.template().split("\r\n")[0] + "\r\n"
    assert next(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";")) == list(
        user_list.COLUMNS
    )
