"""the app session's rotated refresh token and when it rotated, to recognise a reused one

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_refresh_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_sessions_tenant_id_previous_refresh_hash",
            ["tenant_id", "previous_refresh_hash"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_tenant_id_previous_refresh_hash")
        batch_op.drop_column("refreshed_at")
        batch_op.drop_column("previous_refresh_hash")
