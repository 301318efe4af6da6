"""provisioning log entries are numbered in order by the table itself

Revision ID: 0013
Revises: 0012

An entry's id is the table's own (SQLite's rowid, a PostgreSQL identity), so a batch of
entries appends to the table, where random ids under a (tenant_id, id) key scattered every
insert through a second index. The entries are kept, renumbered in the order they were written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = (
    "tenant_id", "at", "token", "method", "path", "status", "resource_id", "user_name", "detail",
    "warnings", "duration_ms",
)  # fmt: skip


def _create(ordered: bool) -> None:
    op.create_table(
        "provisioning_log",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            *([sa.Identity()] if ordered else []),
            autoincrement=ordered,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.String(200), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.String(100), nullable=True),
        sa.Column("user_name", sa.String(1100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_provisioning_log_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            *(("id",) if ordered else ("tenant_id", "id")), name=op.f("pk_provisioning_log")
        ),
        sqlite_autoincrement=ordered,  # on SQLite too, a number is never given again
    )
    op.create_index(
        op.f("ix_provisioning_log_tenant_id_at"), "provisioning_log", ["tenant_id", "at"]
    )


def _rebuild(ordered: bool) -> None:
    """The table anew in the other shape, its entries copied across in the order written."""
    op.execute("CREATE TABLE provisioning_log_copy AS SELECT * FROM provisioning_log")
    op.drop_index(op.f("ix_provisioning_log_tenant_id_at"), table_name="provisioning_log")
    op.drop_table("provisioning_log")
    _create(ordered)
    names = NAMES if ordered else ("id", *NAMES)  # ids stay unique: they were in the table
    copy = sa.table("provisioning_log_copy", *(sa.column(name) for name in ("id", *NAMES)))
    copied = sa.select(*(copy.c[name] for name in names)).order_by(copy.c.at, copy.c.id)
    log = sa.table("provisioning_log", *(sa.column(name) for name in names))
    op.execute(log.insert().from_select(list(names), copied))
    op.drop_table("provisioning_log_copy")


def upgrade() -> None:
    _rebuild(ordered=True)


def downgrade() -> None:
    _rebuild(ordered=False)
