"""an index of the held imports alone

Revision ID: 0015
Revises: 0014

/metrics counts every organization's held imports on each scrape: the index holds only those
few rows, so the count reads none of the history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    where = sa.text("status = 'held'")
    op.create_index(
        "ix_imports_tenant_id_held",
        "imports",
        ["tenant_id"],
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_imports_tenant_id_held", table_name="imports")
