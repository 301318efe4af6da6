"""username, e-mail and group name keys fold compatibility forms (NFKC_Casefold)

Revision ID: 0010
Revises: 0009

Existing keys were casefolded only; they are recomputed as roster.domain.fields.key now
makes them. Where two existing rows of an organization would now share a key (a full-width
"admin" beside "admin"), or a key would no longer fit its column, the later row keeps its old
key and a warning names the organization and the rows: no user is lost, and the clash is left
for an admin to resolve (renaming either user re-keys it).
"""

import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
CHUNK = 2000


def _key(value: str) -> str:
    """fields.key as of this revision (a migration keeps the rule it was written for)."""
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def _rekey(
    table: sa.TableClause, value: str, column: str, unique: Any, width: int, what: str
) -> list[dict[str, Any]]:
    """The rows of `table` whose key (`column`, of `value`) changes, as updates, oldest first:
    a row takes its new key unless a row of its organization that `unique` covers holds it
    already (then it keeps its old one, with a warning). Two passes over the rows, streamed:
    the second finds the rows that stay on a key a changing row wants, so memory holds only
    the changing rows."""
    connection = op.get_bind()
    c = table.c
    changing = []
    rows = sa.select(c.tenant_id, c.id, c[value], c[column], unique.label("unique"))
    ordered = rows.order_by(c.tenant_id, c.created_at, c.id).execution_options(yield_per=CHUNK)
    for tenant, row_id, text, old, covered in connection.execute(ordered):
        wanted = _key(text)
        if wanted != old:
            changing.append((tenant, row_id, old, wanted, bool(covered)))
    if not changing:
        return []
    moving = {row_id for _, row_id, _, _, _ in changing}
    wanted_keys = {(tenant, wanted) for tenant, _, _, wanted, covered in changing if covered}
    taken = set()
    staying = sa.select(c.tenant_id, c.id, c[column]).where(unique)
    for tenant, row_id, old in connection.execute(staying.execution_options(yield_per=CHUNK)):
        if row_id not in moving and (tenant, old) in wanted_keys:
            taken.add((tenant, old))
    updates = []
    for tenant, row_id, old, wanted, covered in changing:
        fits = len(wanted.encode()) <= width
        if fits and (not covered or (tenant, wanted) not in taken):
            if covered:
                taken.add((tenant, wanted))
            updates.append({"t": tenant, "i": row_id, "k": wanted})
            continue
        reason = "does not fit its column" if not fits else "is another user's already"
        log.warning(
            "organization %s: %s %s keeps its old key: its new key %s; rename it to resolve",
            tenant,
            what,
            row_id,
            reason,
        )
        if covered:
            if (tenant, old) in taken:
                raise RuntimeError(
                    f"organization {tenant}: {what} {row_id} can keep neither its old nor its "
                    "new key; rename it before upgrading"
                )
            taken.add((tenant, old))
    return updates


def _write(table: sa.TableClause, column: str, updates: list[dict[str, Any]]) -> None:
    statement = (
        table.update()
        .where(table.c.tenant_id == sa.bindparam("t"), table.c.id == sa.bindparam("i"))
        .values({column: sa.bindparam("k")})
    )
    connection = op.get_bind()
    for start in range(0, len(updates), CHUNK):
        connection.execute(statement, updates[start : start + CHUNK])


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("created_at"),
        *(sa.column(n, sa.String()) for n in columns),
    )


def upgrade() -> None:
    users = _table("users", "username", "username_key", "email", "email_key", "removed_at")
    # Usernames are unique over every retained row, e-mail addresses among present users.
    names = _rekey(users, "username", "username_key", sa.true(), 200, "username")
    present = users.c.removed_at.is_(None)
    mails = _rekey(users, "email", "email_key", present, 320, "email")
    # E-mail keys first: an address a username change frees is never in the way.
    _write(users, "email_key", mails)
    _write(users, "username_key", names)
    groups = _table("groups", "display_name", "display_name_key")
    found = _rekey(groups, "display_name", "display_name_key", sa.true(), 1024, "group")
    _write(groups, "display_name_key", found)


def downgrade() -> None:
    """Keys stay as they are: the earlier code compares casefolded input with them, which
    finds every user whose name has no compatibility characters."""
