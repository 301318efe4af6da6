"""refresh tokens a refresh replaced, to recognise one presented again

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
    op.create_table(
        "spent_refresh_tokens",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "token_hash"),
    )
    op.create_index("ix_spent_refresh_tokens_spent_at", "spent_refresh_tokens", ["spent_at"])


def downgrade() -> None:
    op.drop_index("ix_spent_refresh_tokens_spent_at", table_name="spent_refresh_tokens")
    op.drop_table("spent_refresh_tokens")
