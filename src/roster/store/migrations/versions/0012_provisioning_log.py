"""the provisioning log: what each SCIM request of an organization did

An entry's id is the table's own (SQLite's AUTOINCREMENT rowid, a PostgreSQL identity): a batch
of entries appends to the table, and a number is never given twice.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provisioning_log",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_provisioning_log_tenant_id_at"), "provisioning_log", ["tenant_id", "at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_provisioning_log_tenant_id_at"), table_name="provisioning_log")
    op.drop_table("provisioning_log")
