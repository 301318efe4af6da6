"""The downloads, as the bytes of their CSV files, a part at a time: the user list (the template's
file of the directory's users, domain/user_list.py), the audit log and the import history. The
console streams them to the browser and the CLI writes them as they come, so neither ever holds
a large organization's rows at once. Every file is written as every CSV Roster writes
(domain/csv_export.py): `;`, quoted, CRLF, UTF-8 with a byte-order mark, cells neutralized.

The user list is read through one cursor in one transaction: the file is the directory at one
moment, so a replace with it cannot miss a user renamed while it was read; it is read whole into
a private spool file before the first part goes out. The logs only grow,
and are read in keyset pages, each on a connection of its own (store/keyset.py)."""

import json
import tempfile
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from itertools import chain
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.domain import csv_export, user_list
from roster.store import audit, directory_reads, imports, keyset

T = TypeVar("T")
Rows = Iterable[Sequence[object]]

# A row per changed field of an event (its id in `event` ties the rows of one together).
AUDIT_HEADER = (
    "time", "channel", "actor", "action", "username", "field", "before", "after", "event",
)  # fmt: skip
COUNTED = ("added", "updated", "removed", "unchanged", "invalid")  # an import's counts
IMPORTS_HEADER = (
    "time", "channel", "actor", "file", "mode", "status", *COUNTED, "errors", "warnings", "import",
)  # fmt: skip
IMPORTS_PAGE = 50
SPOOLED_IN_MEMORY = 8 * 1024 * 1024  # a user list larger than this waits on disk
HANDED_OUT = 256 * 1024  # bytes a part, once read
AUDIT_FILE_NAME = "audit log.csv"
IMPORTS_FILE_NAME = "imports.csv"


async def _file(
    header: Sequence[str], parts: AsyncGenerator[list[T], None], rows: Callable[[list[T]], Rows]
) -> AsyncGenerator[bytes, None]:
    """The file's bytes: the byte-order mark and header with the first part's rows, then each
    part's rows as they come. Closing it closes the reader of the parts at once."""
    head: list[Sequence[object]] = [header]
    async with aclosing(parts):
        async for part in parts:
            yield csv_export.encoded(chain(head, rows(part)), first=bool(head))
            head = []
    if head:  # nothing to list: the header alone
        yield csv_export.encoded(head, first=True)


async def user_file(engine: AsyncEngine, tenant_id: UUID) -> AsyncGenerator[bytes, None]:
    """The user list: every present user not managed by SCIM, in username order. The one
    snapshot is read whole at the database's pace into a private spool file, and only then
    handed out: a client that takes its time (or stalls) holds no connection and no snapshot."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOLED_IN_MEMORY) as spool:  # on disk: 0600
        async with engine.connect() as conn:
            users = directory_reads.file_users(conn, tenant_id)
            async with aclosing(_file(user_list.COLUMNS, users, _user_rows)) as chunks:
                async for chunk in chunks:
                    spool.write(chunk)
        spool.seek(0)
        while chunk := spool.read(HANDED_OUT):
            yield chunk


def _user_rows(part: list[tuple[Any, ...]]) -> Rows:
    return map(user_list.cells, part)


def local(at: datetime, tz: ZoneInfo) -> str:
    """A stored (UTC) time in the organization's zone, with its offset: "2026-03-29 03:00:00+02:00"
    (unambiguous, and in order when sorted as text within one offset)."""
    return at.astimezone(tz).isoformat(" ", "seconds")


def shown(value: Any) -> str | None:
    """A field's value as a cell: booleans as the console shows them, structures as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def audit_file(
    engine: AsyncEngine,
    tenant_id: UUID,
    wanted: audit.Filter,
    tz: ZoneInfo,
    labels: Mapping[str, str],
) -> AsyncGenerator[bytes, None]:
    """The audit log's events that match the filter, newest first: a row per changed field
    (with its label, before and after), an event that changed no field a row of its own."""

    async def page(conn: AsyncConnection, after: audit.Key | None, size: int) -> list[audit.Event]:
        return await audit.before(conn, tenant_id, wanted, tz, after, size)

    def rows(events: list[audit.Event]) -> Rows:
        return chain.from_iterable(_event_rows(event, tz, labels) for event in events)

    return _file(AUDIT_HEADER, keyset.pages(engine, page, audit.key_of), rows)


def _event_rows(event: audit.Event, tz: ZoneInfo, labels: Mapping[str, str]) -> Rows:
    before, after = event.before or {}, event.after or {}
    # The user as the console names them: a purged user's events name them themselves.
    name = event.username or before.get("username") or after.get("username")
    what = (local(event.at, tz), event.channel, event.actor, event.action, name)
    changes, event_id = event.changes, str(event.id)  # the id's text once for all its rows
    if not changes:
        return [(*what, None, None, None, event_id)]
    return [
        (*what, labels.get(field, field), shown(old), shown(new), event_id)
        for field, old, new in changes
    ]


def import_history_file(
    engine: AsyncEngine, tenant_id: UUID, tz: ZoneInfo
) -> AsyncGenerator[bytes, None]:
    """Every import in the history, newest first, with its counts and problems."""

    async def page(
        conn: AsyncConnection, after: imports.Key | None, size: int
    ) -> list[imports.ImportRecord]:
        return await imports.before(conn, tenant_id, after, size)

    def rows(records: list[imports.ImportRecord]) -> Rows:
        for r in records:
            counts = [r.counts.get(name, 0) for name in COUNTED]
            yield (local(r.created_at, tz), r.channel, r.actor, r.file_name, r.mode, r.status,
                   *counts, r.error_count, r.warning_count, r.id)  # fmt: skip

    # A page of imports is small: each record holds its report (up to
    # ROSTER_MAX_REPORTED_PROBLEMS problems), though only the counts are written.
    return _file(IMPORTS_HEADER, keyset.pages(engine, page, imports.key_of, IMPORTS_PAGE), rows)
