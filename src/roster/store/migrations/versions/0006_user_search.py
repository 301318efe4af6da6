"""user search text and sort indexes

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = ("username", "first_name", "surname", "display_name", "email", "department")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))
        batch_op.create_index(
            "ix_users_tenant_id_display_name", ["tenant_id", "display_name"], unique=False
        )
        batch_op.create_index(
            "ix_users_tenant_id_department", ["tenant_id", "department"], unique=False
        )
    # Filled in Python, as the application writes it (casefold, which SQLite's lower() is not).
    users = sa.table(
        "users",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("search_text", sa.Text()),
        *(sa.column(name, sa.String()) for name in SEARCHED),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(users.c.tenant_id, users.c.id, *(users.c[name] for name in SEARCHED))
    ).all()
    update = (
        users.update()
        .where(users.c.tenant_id == sa.bindparam("t"), users.c.id == sa.bindparam("i"))
        .values(search_text=sa.bindparam("s"))
    )
    batch = [
        {"t": row[0], "i": row[1], "s": " ".join(v or "" for v in row[2:]).casefold()}
        for row in rows
    ]
    for start in range(0, len(batch), 2000):
        connection.execute(update, batch[start : start + 2000])


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_tenant_id_department")
        batch_op.drop_index("ix_users_tenant_id_display_name")
        batch_op.drop_column("search_text")
