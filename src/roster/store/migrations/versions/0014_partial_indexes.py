"""indexes that hold only the rows looked up by them

Revision ID: 0014
Revises: 0013

Users are looked up by external id only when they have one, and audit events by import only
when an import wrote them: each of these two indexes leaves the other rows out, so a file's users
(who have no external id) write nothing to the first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns, the rows it holds)
PARTIAL = (
    ("ix_users_tenant_id_external_id", "users", ["tenant_id", "external_id"], "external_id"),
    (
        "ix_audit_events_tenant_id_import_id",
        "audit_events",
        ["tenant_id", "import_id"],
        "import_id",
    ),
)


def upgrade() -> None:
    for name, table, columns, column in PARTIAL:
        op.drop_index(name, table_name=table)
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, table, columns, _ in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
