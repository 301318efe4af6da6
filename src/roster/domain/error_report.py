"""The downloadable error report of an import: one CSV row per error or warning kept, and a last
row saying how many there were in all when not every one is kept. Written as every CSV Roster
writes (domain/csv_export.py): values in a report can come from the uploaded file (an unknown
column's header, for one), and no cell of it is one a spreadsheet would run."""

from roster.domain import csv_export
from roster.domain.issues import Problems

HEADER = ("row", "column", "code", "message", "level", "value", "person")
NOT_LISTED = "not_listed"  # the code of the last row when problems were left out


def error_report(problems: Problems) -> str:
    """The report's text. Separated and quoted like the template, so a spreadsheet that opens
    one opens the other."""
    rows: list[tuple[object, ...]] = [HEADER]
    for level, issues in (("error", problems.errors), ("warning", problems.warnings)):
        rows += (
            (issue.row, issue.column, issue.code, issue.message, level, issue.value, issue.person)
            for issue in issues
        )
    left_out = problems.left_out()
    if left_out:
        rows.append(("", "", NOT_LISTED, left_out, "note", "", ""))
    return csv_export.text(rows)
