"""The CSV contract: bytes in, rows and located issues out. Never raises on bad input.

The file is UTF-8 (with or without BOM) or UTF-16 with a BOM, fields separated by ';', RFC 4180
quoting, a header naming template columns in any order. Rows are numbered as a spreadsheet shows
them: the header is row 1 (an Excel "sep=;" hint line is not a row). A value that starts with
single quotes before = + - @, a tab or a CR loses one quote: the escape every CSV Roster writes
puts there so that a spreadsheet never runs a cell (domain/csv_export.py), so a downloaded user
list reads back as it was stored.
"""

import codecs
import io
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, BinaryIO

from roster.domain import csv_export
from roster.domain.fields import (
    BY_COLUMN,
    BY_NAME,
    REPEATING,
    REQUIRED,
    Field,
    Kind,
    check,
    clean,
    key,
    quick,
    quick_column,
    suspect_damage,
)
from roster.domain.issues import Issue, excerpt

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
_BARE = re.compile(r'[^;"\r\n]*')
_SEP_HINT = re.compile(r'"?sep=(.)"?', re.IGNORECASE)
_SEPARATOR_NAMES = {",": "',' (comma)", "\t": "a tab", ";": "';' (semicolon)", "|": "'|'"}


class RowValues(Mapping[str, Any]):
    """A row's clean values by field name, for the columns the file has: a view of the row's
    list of values, since a dict for each row of a large file takes more memory than its
    values."""

    __slots__ = ("_at", "_stored")

    def __init__(self, at: dict[str, int], stored: Sequence[Any]) -> None:
        self._at, self._stored = at, stored  # `at`: field name -> position, one per file

    def __getitem__(self, name: str) -> Any:
        return self._stored[self._at[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)

    def __repr__(self) -> str:
        return repr(dict(self))


NO_VALUES = RowValues({}, ())


@dataclass(slots=True)
class Row:
    row: int
    values: Mapping[str, Any]  # field name -> clean value, for the columns the file has
    valid: bool = True
    # What identifies the row's user even when the row is invalid, so a replace never
    # removes someone whose row was merely broken.
    username_key: str | None = None  # None: unknown (a row too broken to tell)
    email_key: str | None = None


@dataclass(slots=True)
class CsvFile:
    columns: tuple[str, ...] = ()  # field names the header names
    rows: list[Row] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    readable: bool = True  # False: a file-level problem; no row can be trusted

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def people(self, numbers: Collection[int]) -> dict[int, str]:
        """Who each of these rows is about, as a reader knows them: the display name, else the
        first name and surname, else the username (a row too broken for any: not named)."""
        named: dict[int, str] = {}
        for row in self.rows:
            if row.row not in numbers:
                continue
            get = row.values.get
            name = get("display_name") or " ".join(
                filter(None, (get("first_name"), get("surname")))
            )
            if name or get("username"):
                named[row.row] = excerpt(str(name or get("username")))
        return named


def _unreadable(code: str, message: str, row: int | None = None) -> CsvFile:
    return CsvFile(issues=[Issue(row, None, code, message)], readable=False)


BLOCK = 1 << 20  # bytes of a UTF-8 file read and decoded at a time (then to the next line end)

_NUL = Issue(None, None, "encoding", "the file contains NUL characters")


class Undecodable(Exception):
    def __init__(self, issue: Issue) -> None:
        self.issue = issue


def texts(source: BinaryIO) -> Iterator[str]:
    """The file's text, each piece ending at a line end: UTF-8 (with or without BOM) read and
    decoded a block at a time, so neither a large file's bytes nor its text (up to four bytes
    a character) are ever whole in memory; UTF-16 (with a BOM) whole. Anything else raises
    Undecodable with a clear error."""
    head = source.read(max(BLOCK, 200))  # enough to tell the encoding by
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise Undecodable(Issue(None, None, "encoding", "the file is UTF-32; save it as CSV UTF-8"))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _decoded(head + source.read(), "utf-16", 1)
        if "\x00" in text:
            raise Undecodable(_NUL)
        yield text
        return
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    elif head[:200].count(b"\x00") > len(head[:200]) // 4:
        raise Undecodable(
            Issue(
                None,
                None,
                "encoding",
                "the file looks like UTF-16 without a byte-order mark; save it as CSV UTF-8",
            )
        )
    line, nul = 1, False  # the line a block starts on; whether a block held a NUL
    while head:
        # A block ends at a line end (never inside a UTF-8 character) outside quotes: an even
        # count of quotes so far, as "" inside a value counts two.
        block = head + source.readline()
        while block.count(b'"') % 2 and (more := source.readline()):
            block += more
        nul = nul or b"\x00" in block
        yield _decoded(block, "utf-8", line)
        line += block.count(b"\n")
        head = source.read(BLOCK)
    if nul:  # once all of it decodes, as a file's problem with its encoding is named first
        raise Undecodable(_NUL)


def _decoded(block: bytes, encoding: str, line: int) -> str:
    """The block's text, which starts on `line` of the file."""
    try:
        text = block.decode(encoding)
    except UnicodeDecodeError as error:
        line += block[: error.start].count(b"\n")
        byte = block[error.start : error.start + 1].hex().upper()
        message = (
            f"the file is not {'valid UTF-16' if encoding == 'utf-16' else 'UTF-8'}: "
            f"byte 0x{byte} on line {line} (Windows 'ANSI' exports do this); "
            "save it as CSV UTF-8"
        )
        raise Undecodable(Issue(None, None, "encoding", message)) from None
    if text.count("\r") != text.count("\r\n"):  # bare CR line ends (old Mac exports)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _record(text: str, pos: int) -> tuple[list[str], bool, int, tuple[str, str] | None]:
    """One record from pos: (fields, every field quoted, next position, problem)."""
    end_of_line = text.find("\n", pos)
    if end_of_line < 0:
        end_of_line = len(text)
    line = text[pos:end_of_line]
    if line.endswith("\r"):
        line = line[:-1]
    # Fast path for the common, fully quoted line without inner quotes.
    if len(line) >= 2 and line[0] == '"' and line[-1] == '"':
        parts = line[1:-1].split('";"')
        if line.count('"') == 2 * len(parts):
            return parts, True, end_of_line + 1, None
    fields: list[str] = []
    all_quoted = True
    size = len(text)
    while True:
        quoted = pos < size and text[pos] == '"'
        if quoted:
            match = _QUOTED.match(text, pos)
            if match is None:
                return (
                    fields,
                    all_quoted,
                    size,
                    (
                        "unclosed_quote",
                        f"field {len(fields) + 1} opens a double quote that is never closed; "
                        "the rest of the file cannot be read",
                    ),
                )
            value = match.group(1).replace('""', '"')
        else:
            match = _BARE.match(text, pos)
            assert match is not None  # the pattern matches the empty string
            value = match.group()
            all_quoted = False
        fields.append(value)
        pos = match.end()
        if pos >= size:
            return fields, all_quoted, size, None
        char = text[pos]
        if char == ";":
            pos += 1
            continue
        if char == "\n":
            return fields, all_quoted, pos + 1, None
        if text.startswith("\r\n", pos):
            return fields, all_quoted, pos + 2, None
        end_of_line = text.find("\n", pos)
        resume = size if end_of_line < 0 else end_of_line + 1
        if quoted:
            return (
                fields,
                all_quoted,
                resume,
                (
                    "text_after_quote",
                    f"field {len(fields)} has characters after its closing double quote",
                ),
            )
        return (
            fields,
            all_quoted,
            resume,
            (
                "stray_quote",
                f"field {len(fields)} has a double quote inside an unquoted value; "
                'quote the whole field and double the inner quote ("")',
            ),
        )


def _header(names: list[str]) -> tuple[list[Field | None], list[Issue]]:
    columns: list[Field | None] = []
    issues: list[Issue] = []
    seen: set[str] = set()
    for raw in names:
        name = raw.strip().lstrip("\ufeff").strip().upper()
        known = BY_COLUMN.get(name)
        if known is None:
            columns.append(None)
            if name:
                issues.append(
                    Issue(
                        1,
                        raw.strip(),
                        "unknown_column",
                        f"column '{raw.strip()}' is not in the template and is ignored",
                        "warning",
                    )
                )
            continue
        if name in seen:
            issues.append(Issue(1, name, "duplicate_column", f"column {name} appears twice"))
        seen.add(name)
        columns.append(known)
    missing = [f.column for f in REQUIRED if f.column not in seen]
    if missing:
        issues.append(
            Issue(
                1,
                None,
                "missing_columns",
                f"the header lacks the mandatory column(s) {', '.join(missing)}",
            )
        )
    return columns, issues


def too_large(size: int, max_bytes: int) -> Issue:
    return Issue(
        None, None, "file_too_large", f"the file is {size:,} bytes; the limit is {max_bytes:,}"
    )


def parse(data: bytes | BinaryIO, max_bytes: int | None = None) -> CsvFile:
    """Read a template CSV file, given whole or as a binary file open at its start. Every
    problem comes back as an Issue; nothing raises."""
    if not isinstance(data, bytes) and not data.seekable():  # a pipe: read it, bounded
        data = data.read() if max_bytes is None else data.read(max_bytes + 1)
    source = io.BytesIO(data) if isinstance(data, bytes) else data  # (shares the bytes)
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    if max_bytes is not None and size > max_bytes:
        return CsvFile(issues=[too_large(size, max_bytes)], readable=False)
    escapes: list[bool] = []  # whether a block may hold a value an export escaped
    blocks = _noting_escapes(texts(source), escapes)
    try:
        result = _parse(blocks, escapes)
        for _ in blocks:  # what a file-level problem left unread may still not decode
            pass
        return result
    except Undecodable as undecodable:
        return CsvFile(issues=[undecodable.issue], readable=False)


def _noting_escapes(blocks: Iterator[str], escapes: list[bool]) -> Iterator[str]:
    """The blocks, noting in `escapes` (made true) whether one may hold a value an export
    escaped (`csv_export.may_hold_escapes`; a block ends at a line end, so none is cut)."""
    for block in blocks:
        if not escapes and csv_export.may_hold_escapes(block):
            escapes.append(True)
        yield block


def _parse(blocks: Iterator[str], escapes: list[bool]) -> CsvFile:
    text = next(blocks, "")
    while text.count("\n") < 2 or not text.strip():  # the header (and a hint line) whole
        if not (more := next(blocks, "")):
            break
        text += more
    if not text.strip():
        return _unreadable("empty_file", "the file is empty")

    pos = 0
    first_line = text[: text.find("\n")] if "\n" in text else text
    hint = _SEP_HINT.fullmatch(first_line.strip())
    if hint:
        if hint.group(1) != ";":
            return _separator_error(hint.group(1))
        pos = len(first_line) + 1

    header_end = text.find("\n", pos)
    separator = _foreign_separator(text[pos : header_end if header_end >= 0 else len(text)])
    if separator:
        return _separator_error(separator)
    names, header_quoted, end, problem = _record(text, pos)
    if problem and problem[0] == "unclosed_quote" and (rest := "".join(blocks)):
        text += rest  # a quoted name goes on past the block (see the rows below)
        names, header_quoted, end, problem = _record(text, pos)
    if problem:
        return _unreadable(problem[0], f"header: {problem[1]}", 1)
    pos = end
    columns, header_issues = _header(names)
    result = CsvFile(columns=tuple(f.name for f in columns if f is not None), issues=header_issues)
    if any(i.severity == "error" for i in header_issues):
        result.readable = False
        return result

    # Rows (the header too) with a field not in quotes, and how many quote every field: a
    # file that does both was edited by hand (a program quotes alike throughout).
    unquoted_rows: list[int] = [] if header_quoted else [1]
    quoted_rows = int(header_quoted)
    # Equal values of a REPEATING column become one object as each row is read, so the copies
    # are freed while the next rows can reuse their memory.
    repeating: list[tuple[int, dict[str, str]]] = [
        (i, {}) for i, f in enumerate(columns) if f is not None and f.name in REPEATING
    ]
    numbers: list[int] = []  # of the well-formed rows, whose fields are in `records`
    records: list[list[Any]] = []
    row_number = 1
    while True:
        if pos >= len(text):
            text, pos = next(blocks, ""), 0
            if not text:
                break
        row_number += 1
        start = pos
        fields, all_quoted, pos, problem = _record(text, pos)
        if problem and problem[0] == "unclosed_quote" and (rest := "".join(blocks)):
            # A quoted value goes on past the block: read it again with the rest of the file.
            text, pos, row_number = text[start:] + rest, 0, row_number - 1
            continue
        if problem and (problem[0] == "unclosed_quote" or "\n" in text[start : pos - 1]):
            # A broken quote that swallowed line ends hides where the next rows begin: no row
            # after it can be trusted, and a replace must not remove the people it hid.
            result.issues.append(Issue(row_number, None, *problem))
            result.readable = False
            return result
        if not problem and not fields[0].strip() and not "".join(fields).strip():
            continue  # a blank line, or a row of empty fields as Excel leaves them
        if not all_quoted:
            unquoted_rows.append(row_number)
        else:
            quoted_rows += 1
        if problem is None and len(fields) == len(columns):
            numbers.append(row_number)
            records.append(fields)
            for index, canonical in repeating:
                fields[index] = canonical.setdefault(fields[index], fields[index])
            continue
        if problem is None:
            problem = (
                "field_count",
                f"the row has {len(fields)} fields; the header has {len(columns)}",
            )
        # Its fields may sit in the wrong columns: who the row is about is unknown, which
        # keeps a replace from removing anyone (see plan.reconcile).
        result.issues.append(Issue(row_number, None, *problem))
        result.rows.append(Row(row_number, NO_VALUES, valid=False))

    del text  # the records hold what is needed of it: let the last block go first
    result.rows += _validate(numbers, records, columns, result.issues, bool(escapes))
    result.rows.sort(key=lambda r: r.row)
    _mark_duplicates(result)
    result.issues.sort(key=lambda issue: issue.row or 0)
    if unquoted_rows and quoted_rows:  # Excel quotes only the fields that need it: normal
        result.issues.append(
            Issue(
                None,
                None,
                "unquoted_fields",
                f"{len(unquoted_rows)} row(s) have fields without double quotes "
                f"(first: row {unquoted_rows[0]}) while {quoted_rows} quote every field; they "
                "were read safely, but the file looks edited by hand: check its last changes",
                "warning",
            )
        )
    return result


def _foreign_separator(header: str) -> str | None:
    """The separator a header uses when it is not ';' (outside quotes)."""
    bare = re.sub(r'"[^"]*"', "", header)
    if ";" in bare:
        return None
    counts = {sep: bare.count(sep) for sep in (",", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def _separator_error(separator: str) -> CsvFile:
    name = _SEPARATOR_NAMES.get(separator, repr(separator))
    return _unreadable(
        "wrong_separator",
        f"the fields seem to be separated by {name}; Roster needs ';' (semicolon). "
        "Save the file with ';' as the list separator",
    )


def _key_of(value: str) -> str | None:
    return key(clean(value)) if value else None


def _keys_of(values: list[str]) -> list[str | None]:
    """`_key_of` of each value of a column: a column already in its compared form (plain
    lowercase ASCII, as most files' usernames and addresses are) is its own keys."""
    joined = "\n".join(values)
    if joined.isascii() and joined.lower() == joined:
        return [value or None for value in values]
    return list(map(_key_of, values))


def _validate(
    numbers: list[int],
    records: list[list[Any]],
    columns: list[Field | None],
    issues: list[Issue],
    escapes: bool,
) -> list[Row]:
    """Check well-formed rows column by column: whole columns of plain values pass in one
    step; only the others are checked value by value. Each record's list then holds its row's
    clean values in place (a new tuple a row would leave the lists' memory behind as holes)."""
    rows = [Row(number, NO_VALUES) for number in numbers]
    at: dict[str, int] = {}
    stored_columns: list[Iterable[Any]] = []
    for index, column in enumerate(columns):
        if column is None:
            stored_columns.append(repeat(None))
            continue
        values = list(map(str.strip, map(itemgetter(index), records)))
        if escapes and csv_export.escaped(values):  # an export's leading ' (csv_export)
            values = [csv_export.restore(value).strip() for value in values]
        if column.name == "username":
            for row, row_key in zip(rows, _keys_of(values), strict=True):
                row.username_key = row_key
        elif column.name == "email":
            for row, row_key in zip(rows, _keys_of(values), strict=True):
                row.email_key = row_key
        at[column.name] = index
        if not quick_column(column, values):
            stored_columns.append(_checked(column, rows, values, issues))
        elif column.kind is Kind.FLAG:
            stored_columns.append([value == "1" if value else None for value in values])
        else:
            stored_columns.append([value or None for value in values])
    # (an unknown column is `repeat(None)`: the known ones end the rows)
    for row, fields, stored in zip(rows, records, zip(*stored_columns, strict=False), strict=True):
        fields[:] = stored
        row.values = RowValues(at, fields)
    return rows


def _checked(column: Field, rows: list[Row], values: list[str], issues: list[Issue]) -> list[Any]:
    """One column, value by value: the stored values, and an issue for each problem."""
    stored_values: list[Any] = []
    for row, value in zip(rows, values, strict=True):
        if value and quick(column, value):
            stored_values.append(value == "1" if column.kind is Kind.FLAG else value)
            continue
        stored, error = check(column, value)
        stored_values.append(stored)
        if error:
            message = f"{column.column} {error.message}"
            issues.append(Issue(row.row, column.column, error.code, message, value=excerpt(value)))
            row.valid = False
            continue
        damage = suspect_damage(column, stored)
        if damage:
            issues.append(
                Issue(
                    row.row,
                    column.column,
                    damage.code,
                    damage.message,
                    "warning",
                    excerpt(stored),
                )
            )
    return stored_values


def _mark_duplicates(result: CsvFile) -> None:
    """Every row whose username or e-mail address another row repeats is an error. Its message
    names one other row (the first with that value, or for the first row the next) and how many
    share it, so each costs the same however many rows repeat the value."""
    for name in ("username", "email"):
        first_with: dict[str, Row] = {}
        repeated: dict[str, list[Row]] = {}  # only keys that repeat: most rows have their own
        key_of = attrgetter(f"{name}_key")
        for row in result.rows:
            row_key = key_of(row)
            if row_key is None:
                continue
            first_row = first_with.setdefault(row_key, row)
            if first_row is not row:
                repeated.setdefault(row_key, [first_row]).append(row)
        column = BY_NAME[name].column
        what = "username" if name == "username" else "e-mail address"
        for rows in repeated.values():
            first, second = rows[0].row, rows[1].row
            for row in rows:
                other = second if row.row == first else first
                result.issues.append(
                    Issue(
                        row.row,
                        column,
                        f"duplicate_{name}",
                        f"{column} is the same as on row {other}: {len(rows):,} rows share "
                        f"this {what}",
                        value=excerpt(str(row.values.get(name) or "")),
                    )
                )
                row.valid = False


def template() -> str:
    """The CSV template: the header and the seed's example row."""
    header = ";".join(f'"{f.column}"' for f in BY_COLUMN.values())
    example = ";".join(f'"{f.example}"' for f in BY_COLUMN.values())
    return f"{header}\r\n{example}\r\n"
