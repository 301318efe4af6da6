"""the audit log's time index also orders events of one time

Revision ID: 0019
Revises: 0018

An import writes all its audit events with one time, so the log's order is (at, id), and a
download of the log reads it in keyset pages after the last page's (at, id). With `id` in the
index, each page is a range of it; without, every page sorted all the events of that time
again, as many as the import's users.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_tenant_id_at_id", "audit_events", ["tenant_id", "at", "id"])
    op.drop_index("ix_audit_events_tenant_id_at", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_tenant_id_at", "audit_events", ["tenant_id", "at"])
    op.drop_index("ix_audit_events_tenant_id_at_id", table_name="audit_events")
