"""The error report CSV: every issue with its place, and no cell a spreadsheet would run."""

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from roster.domain.csv_export import neutralize
from roster.domain.error_report import HEADER, error_report
from roster.domain.issues import Issue, Problems


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_formula_prefixes_get_a_quote() -> None:
    for value in ("=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x", "'=x", "''+1"):
        assert neutralize(value) == "'" + value
    for value in ("plain", "a=b", " =x", "", "'plain", "van 't Hoff", "' =x"):
        assert neutralize(value) == value


def test_errors_then_warnings_with_their_place() -> None:
    errors = [
        Issue(3, "CSV_EMAIL", "invalid_email", "CSV_EMAIL is not valid", value="=jan@", person="J")
    ]
    warnings = [
        Issue(1, "=cmd", "unknown_column", "column '=cmd' is ignored", "warning"),
        Issue(None, None, "unquoted_fields", "fields without quotes", "warning"),
    ]
    rows = read(error_report(Problems(errors, warnings, 1, 2)))
    assert rows == [
        list(HEADER),
        ["3", "CSV_EMAIL", "invalid_email", "CSV_EMAIL is not valid", "error", "'=jan@", "J"],
        ["1", "'=cmd", "unknown_column", "column '=cmd' is ignored", "warning", "", ""],
        ["", "", "unquoted_fields", "fields without quotes", "warning", "", ""],
    ]


@given(st.text(), st.text(), st.text(), st.text())
def test_no_cell_starts_a_formula(column: str, message: str, value: str, person: str) -> None:
    issue = Issue(2, column, "x", message, value=value, person=person)
    for row in read(error_report(Problems([issue], [], 2, 0))):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@"))
