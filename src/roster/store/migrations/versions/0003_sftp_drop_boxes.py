"""sftp drop boxes

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.tenant_id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "dropboxes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("daily_time", sa.String(length=5), nullable=False),
        sa.Column("process_on_upload", sa.Boolean(), nullable=False),
        sa.Column("next_daily_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upload_pickup_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_upload_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pickup_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_import_id", sa.Uuid(), nullable=True),
        sa.Column("last_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("dropboxes"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_dropboxes")),
    )
    op.create_table(
        "dropbox_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("comment", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("dropbox_keys"),
        sa.PrimaryKeyConstraint("tenant_id", "fingerprint", name=op.f("pk_dropbox_keys")),
    )


def downgrade() -> None:
    op.drop_table("dropbox_keys")
    op.drop_table("dropboxes")
