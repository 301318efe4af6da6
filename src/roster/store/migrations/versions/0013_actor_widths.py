"""who made a change holds any admin's e-mail address (up to 320 characters)

Revision ID: 0013
Revises: 0012

An admin's address comes from a file (at most 254 bytes) or an identity provider (at most 320
characters); the audit trail and the import history name that admin. Narrowing back refuses
while a longer name is stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("audit_events", "imports")


def _alter(before: int, after: int) -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(
                "actor",
                existing_type=sa.String(before),
                type_=sa.String(after),
                existing_nullable=False,
            )


def upgrade() -> None:
    _alter(200, 320)


def downgrade() -> None:
    _alter(320, 200)
