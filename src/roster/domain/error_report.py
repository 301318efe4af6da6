"""The downloadable error report of an import: one CSV row per error or warning kept, and a last
row saying how many there were in all when not every one is kept.

A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one) as a formula, and
values in a report can come from the uploaded file (an unknown column's header, for one). Such a
cell gets a leading single quote, so it is shown as text and never evaluated."""

import csv
import io

from roster.domain.issues import Problems

HEADER = ("row", "column", "code", "message", "level", "value", "person")
NOT_LISTED = "not_listed"  # the code of the last row when problems were left out
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def error_report(problems: Problems) -> str:
    """The report's text. Separated and quoted like the template, so a spreadsheet that opens
    one opens the other."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(HEADER)
    for level, issues in (("error", problems.errors), ("warning", problems.warnings)):
        for issue in issues:
            cells = (issue.row, issue.column, issue.code, issue.message, level, issue.value,
                     issue.person)  # fmt: skip
            writer.writerow(["" if c is None else neutralize(str(c)) for c in cells])
    left_out = problems.left_out()
    if left_out:
        writer.writerow(["", "", NOT_LISTED, left_out, "note", "", ""])
    return out.getvalue()
