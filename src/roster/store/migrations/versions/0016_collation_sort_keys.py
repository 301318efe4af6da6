"""names and departments sort by Unicode collation keys

Revision ID: 0016
Revises: 0015

The console's list sorted names and departments by code point (Krüger before Köhler, Çelik
last) and, for a user without a department, NULL first on SQLite and last on PostgreSQL. Each
user now has a sort key per sorted column (roster.domain.collation), bytes compared byte by
byte on both databases, and the two indexes the list reads lead with them. The keys of existing
users are computed here in Python, as the application writes them, a chunk of users at a time.
The columns stay nullable: a column of bytes has no default both databases accept, and SQLite
would have to copy the whole table to make one required.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 2000
WIDTH = 1024  # roster.domain.collation.SORT_KEY_WIDTH as of this revision
# (column sorted, its key, the index before, the index after)
SORTED = (
    (
        "display_name",
        "display_name_sort_key",
        "ix_users_tenant_id_display_name",
        "ix_users_tenant_id_display_name_sort_key",
    ),
    (
        "department",
        "department_sort_key",
        "ix_users_tenant_id_department",
        "ix_users_tenant_id_department_sort_key",
    ),
)


def _sort_key() -> Any:
    """roster.domain.collation.sort_key as of this revision (a migration keeps the rule it was
    written for): ICU's root collation at secondary strength, no value as the empty text."""
    import icu

    collator = icu.Collator.createInstance(icu.Locale.getRoot())
    collator.setStrength(icu.Collator.SECONDARY)
    return lambda value: collator.getSortKey(value or "")[:WIDTH]


def _fill() -> None:
    users = sa.table(
        "users",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        *(sa.column(value, sa.String()) for value, _, _, _ in SORTED),
        *(sa.column(key, sa.LargeBinary()) for _, key, _, _ in SORTED),
    )
    c = users.c
    update = (
        users.update()
        .where(c.tenant_id == sa.bindparam("t"), c.id == sa.bindparam("i"))
        .values({key: sa.bindparam(key) for _, key, _, _ in SORTED})
    )
    sort_key = _sort_key()
    connection = op.get_bind()
    after: tuple[Any, Any] | None = None
    while True:  # a chunk at a time by primary key: no read stays open while its rows are written
        chunk = sa.select(c.tenant_id, c.id, *(c[value] for value, _, _, _ in SORTED))
        if after is not None:
            last = (sa.literal(value, sa.Uuid()) for value in after)
            chunk = chunk.where(sa.tuple_(c.tenant_id, c.id) > sa.tuple_(*last))
        rows = connection.execute(chunk.order_by(c.tenant_id, c.id).limit(CHUNK)).all()
        if not rows:
            return
        connection.execute(
            update,
            [
                {
                    "t": t,
                    "i": i,
                    "display_name_sort_key": sort_key(name),
                    "department_sort_key": sort_key(department),
                }
                for t, i, name, department in rows
            ],
        )
        after = (rows[-1][0], rows[-1][1])


def upgrade() -> None:
    for _, key, _, _ in SORTED:
        op.add_column("users", sa.Column(key, sa.LargeBinary(), nullable=True))
    _fill()
    for _, key, before, after in SORTED:
        op.drop_index(before, table_name="users")
        op.create_index(after, "users", ["tenant_id", key, "username_key"])


def downgrade() -> None:
    for value, key, before, after in SORTED:
        op.drop_index(after, table_name="users")
        op.create_index(before, "users", ["tenant_id", value])
        # SQLite (3.35 and later) and PostgreSQL drop a column in place.
        op.execute(sa.text(f"ALTER TABLE users DROP COLUMN {key}"))
