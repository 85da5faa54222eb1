"""Answered platform updates: an update delivered again after a crash is answered only once.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answered_updates",
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("update_id", sa.String(255), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transport", "update_id", name="pk_answered_updates"),
    )
    op.create_index("ix_answered_updates_answered_at", "answered_updates", ["answered_at"])


def downgrade() -> None:
    op.drop_index("ix_answered_updates_answered_at", "answered_updates")
    op.drop_table("answered_updates")
