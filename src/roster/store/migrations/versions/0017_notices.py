"""notices mailed to an organization's admins, the kinds each organization turned off, and an
index of the refused SCIM requests they count

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    # Plain ALTER TABLE on SQLite too: a batch would copy the organizations' table, and dropping
    # the old copy would cascade to every row that refers to it.
    op.add_column("tenants", sa.Column("notices_off", json, server_default="[]", nullable=False))
    op.create_table(
        "notices",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_notices_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "key", name=op.f("pk_notices")),
    )
    refused = sa.text("status >= 400")
    op.create_index(
        "ix_provisioning_log_refused", "provisioning_log", ["tenant_id", "at"],
        sqlite_where=refused, postgresql_where=refused,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_provisioning_log_refused", table_name="provisioning_log")
    op.drop_table("notices")
    op.drop_column("tenants", "notices_off")
