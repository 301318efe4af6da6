"""The downloadable error report of an import: one CSV row per error or warning.

A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one) as a formula, and
values in a report can come from the uploaded file (an unknown column's header, for one). Such a
cell gets a leading single quote, so it is shown as text and never evaluated."""

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

HEADER = ("row", "column", "code", "message", "level")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def error_report(errors: Iterable[Mapping[str, Any]], warnings: Iterable[Mapping[str, Any]]) -> str:
    """Issues as `Issue.as_dict()` (or the history's stored form) -> the report's text.
    Separated and quoted like the template, so a spreadsheet that opens one opens the other."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(HEADER)
    for level, issues in (("error", errors), ("warning", warnings)):
        for issue in issues:
            cells = [issue.get("row"), issue.get("column"), issue.get("code"), issue.get("message")]
            writer.writerow(["" if c is None else neutralize(str(c)) for c in cells] + [level])
    return out.getvalue()
