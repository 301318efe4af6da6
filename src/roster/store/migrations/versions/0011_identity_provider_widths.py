"""users' columns hold what an identity provider sends whole (Entra ID's own limits)

Revision ID: 0011
Revises: 0010

The template's limits stay the CSV file's contract (roster.domain.fields); SCIM values are
stored up to fields.Field.idp_max, and usernames' keys up to fields.KEY_WIDTH. Widening keeps
every value; narrowing back refuses while a longer value is stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# column: (width before, width after)
WIDTHS = {
    "username": (50, 256),
    "username_key": (200, 1024),
    "first_name": (50, 64),
    "surname": (50, 64),
    "display_name": (20, 256),
    "title": (20, 128),
    "phone": (20, 64),
    "mobile": (20, 64),
    "department": (50, 64),
    "profile_photo": (500, 2048),
}
REQUIRED = {"username", "username_key", "first_name", "surname", "display_name"}


def _alter(before: int, after: int) -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column, widths in WIDTHS.items():
            batch_op.alter_column(
                column,
                existing_type=sa.String(widths[before]),
                type_=sa.String(widths[after]),
                existing_nullable=column not in REQUIRED,
            )


def upgrade() -> None:
    _alter(0, 1)


def downgrade() -> None:
    _alter(1, 0)
