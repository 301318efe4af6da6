"""How Roster writes every CSV file (the user list, an import's error report, the audit log and
the import history): the template's dialect (`;` between fields, every field in double quotes,
CRLF line ends), UTF-8 with a byte-order mark so that Excel reads it as UTF-8, and no cell that a
spreadsheet would run.

A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one) as a formula, and
what Roster writes comes from people and files (a department "-Facilities", a phone number "+31 6
12345678", an unknown column's header). Such a cell gets a leading single quote, so it is shown as
text and never evaluated. The template's reader takes that quote off again (`restore`), so a
value an export wrote reads back as it was stored. A value that itself starts with single quotes
before one of those characters ("'=x") gets one quote more, so every value reads back exactly:
the reader drops one quote where quotes come before = + - @, a tab or a CR, and only there.
"""

import csv
import io
import re
from collections.abc import Iterable

BOM = "\ufeff"
# A cell a spreadsheet would run, after any single quotes an earlier escape put before it.
_RUNNABLE = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
_ESCAPED_LINE = re.compile(r"^'+[=+\-@\t\r]", re.MULTILINE)
_QUOTE_BEFORE_RUNNABLE = re.compile(r"'[=+\-@\t\r]")  # in every escaped value


def neutralize(value: str) -> str:
    """The cell as written: a leading `'` before = + - @, a tab or a CR (and before quotes that
    precede one), so a spreadsheet shows it as text."""
    return "'" + value if _RUNNABLE.match(value) else value


def restore(value: str) -> str:
    """The value a cell written by `neutralize` holds: the template's reader's rule."""
    return value[1:] if _ESCAPED.match(value) else value


def may_hold_escapes(text: str) -> bool:
    """Whether some value in this text may start the way `neutralize` starts one: a file
    without a `'` before = + - @, a tab or a CR anywhere costs one quick search (the pattern
    starts with a fixed character), and no value of it is looked at for the escape."""
    return _QUOTE_BEFORE_RUNNABLE.search(text) is not None


def escaped(values: Iterable[str]) -> bool:
    """Whether any of these values starts the way `neutralize` starts one."""
    joined = "\n".join(values)
    return _QUOTE_BEFORE_RUNNABLE.search(joined) is not None and bool(_ESCAPED_LINE.search(joined))


# The first characters of a cell `neutralize` may change: any other cell is written as it is.
_STARTS = frozenset("=+-@\t\r'")


def _cell(value: object) -> str:
    return "" if value is None else neutralize(value if isinstance(value, str) else str(value))


def _cells(row: Iterable[object]) -> list[object]:
    # Most cells are text that starts plainly: those skip the call (a large file has millions).
    return [v if v.__class__ is str and v[:1] not in _STARTS else _cell(v) for v in row]


def text(rows: Iterable[Iterable[object]]) -> str:
    """Rows as the file's text (no byte-order mark): every cell neutralized, None empty."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows(map(_cells, rows))
    return out.getvalue()


def encoded(rows: Iterable[Iterable[object]], *, first: bool = False) -> bytes:
    """Rows as the file's bytes; the `first` rows of a file begin with the byte-order mark."""
    return ((BOM if first else "") + text(rows)).encode()
