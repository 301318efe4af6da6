"""sign-in through an organization's OpenID Connect provider

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    when = sa.DateTime(timezone=True)
    op.create_table(
        "sso_providers",
        *_tenant("sso_providers"),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=False),
        sa.Column("claim", sa.String(length=30), nullable=False),
        sa.Column("codes_allowed", sa.Boolean(), nullable=False),
        sa.Column("redirect_uris", json, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sso_providers")),
    )
    op.create_table(
        "sso_attempts",
        *_tenant("sso_attempts"),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("verifier_sealed", sa.Text(), nullable=False),
        sa.Column("client", sa.String(length=10), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("app_state", sa.String(length=500), nullable=True),
        sa.Column("next_path", sa.String(length=2000), nullable=True),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "state_hash", name=op.f("pk_sso_attempts")),
    )
    op.create_index("ix_sso_attempts_expires_at", "sso_attempts", ["expires_at"])
    op.create_table(
        "sso_codes",
        *_tenant("sso_codes"),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=False),
        sa.Column("used_at", when, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "code_hash", name=op.f("pk_sso_codes")),
    )
    op.create_index("ix_sso_codes_expires_at", "sso_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("sso_codes")
    op.drop_table("sso_attempts")
    op.drop_table("sso_providers")
