"""The user list as a file: the directory's users in the template's CSV, as "Download the user
list" and `roster users export` write it.

The template's twelve columns and header, every field quoted, `;`, CRLF, UTF-8 with a byte-order
mark (domain/csv_export.py), each value as the template's reader reads it back: a flag `1` or
`0`, no value an empty field, text as stored, a cell a spreadsheet would run with its leading
`'`. A replace with the file unchanged therefore changes nothing. Users managed by SCIM are not
in it: a replace leaves them alone anyway, and a row naming one is refused (`managed_by_scim`).
The template has no column for whether a user is active or an admin, so a replace with the file
keeps both as they are.
"""

from collections.abc import Sequence
from typing import Any

from roster.domain.fields import FIELDS, Kind

FILE_NAME = "flexwhere - users.csv"  # the name the seed gives the file, on every channel
COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS)  # the template's header
_FLAGS = tuple(i for i, f in enumerate(FIELDS) if f.kind is Kind.FLAG)


def cells(values: Sequence[Any]) -> list[Any]:
    """One user's values (in `fields.FIELD_NAMES` order, the columns') as the template writes
    them: a flag 1 or 0, no value None (an empty field)."""
    row = list(values)
    for index in _FLAGS:
        flag = row[index]
        row[index] = None if flag is None else "1" if flag else "0"
    return row
