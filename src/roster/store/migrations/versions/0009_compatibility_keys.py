"""username, e-mail and group name keys fold compatibility forms (NFKC_Casefold)

Revision ID: 0009
Revises: 0007

Existing keys were casefolded only; they are recomputed as roster.domain.fields.key now
makes them. Where two existing rows of an organization would now share a key (a full-width
"admin" beside "admin"), or a key would no longer fit its column, the later row keeps its old
key and a warning names the organization and the rows: no user is lost, and the clash is left
for an admin to resolve (renaming either user re-keys it).
"""

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
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
    rows: Iterable[tuple[Any, Any, str, str, bool]], width: int, what: str
) -> list[dict[str, Any]]:
    """New keys for rows of (tenant, id, value, old key, unique), oldest first: an updated row
    takes its new key unless a unique row of its organization holds it already (then it keeps
    its old one, with a warning). Returns the updates."""
    rows = list(rows)
    new = [_key(value) for _, _, value, _, _ in rows]
    # Unchanged unique keys stay where they are: reserved first.
    taken = {
        (t, old) for (t, _, _, old, unique), k in zip(rows, new, strict=True) if unique and k == old
    }
    updates = []
    for (tenant, row_id, _, old, unique), wanted in zip(rows, new, strict=True):
        if wanted == old:
            continue
        fits = len(wanted.encode()) <= width
        if fits and (not unique or (tenant, wanted) not in taken):
            if unique:
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
        if unique:
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


def upgrade() -> None:
    connection = op.get_bind()
    users = sa.table(
        "users",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        *(sa.column(n) for n in ("username", "email", "removed_at")),
        sa.column("username_key", sa.String()),
        sa.column("email_key", sa.String()),
        sa.column("created_at"),
    )
    rows = connection.execute(
        sa.select(
            users.c.tenant_id,
            users.c.id,
            users.c.username,
            users.c.username_key,
            users.c.email,
            users.c.email_key,
            users.c.removed_at.is_(None),
        ).order_by(users.c.tenant_id, users.c.created_at, users.c.id)
    ).all()
    # Usernames are unique over every retained row, e-mail addresses among present users.
    names = _rekey(((r[0], r[1], r[2], r[3], True) for r in rows), 200, "username")
    mails = _rekey(((r[0], r[1], r[4], r[5], r[6]) for r in rows), 320, "email")
    # E-mail keys first: an address a username change frees is never in the way.
    _write(users, "email_key", mails)
    _write(users, "username_key", names)
    groups = sa.table(
        "groups",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        *(sa.column(n) for n in ("display_name", "created_at")),
        sa.column("display_name_key", sa.String()),
    )
    found = connection.execute(
        sa.select(
            groups.c.tenant_id, groups.c.id, groups.c.display_name, groups.c.display_name_key
        ).order_by(groups.c.tenant_id, groups.c.created_at, groups.c.id)
    ).all()
    _write(groups, "display_name_key", _rekey(((*r, True) for r in found), 1024, "group"))


def downgrade() -> None:
    """Keys stay as they are: the earlier code compares casefolded input with them, which
    finds every user whose name has no compatibility characters."""
