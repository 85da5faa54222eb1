"""The first schema: preferences, subscriptions, anonymous events, unanswered questions,
referrals, the news outbox and transport sync positions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("language", sa.String(8)),
        sa.Column("district", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_users"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("user_key", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("address", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(["user_key"], ["users.key"], ondelete="CASCADE",
                                name="fk_subscriptions_user_key_users"),
        sa.PrimaryKeyConstraint("user_key", "topic", name="pk_subscriptions"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("topic", sa.String(32)),
        sa.Column("offer", sa.String(64)),
        sa.Column("answered", sa.Boolean),
        sa.Column("helpful", sa.Boolean),
        sa.Column("payload", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_day", "events", ["day"])
    op.create_table(
        "unanswered",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unanswered"),
    )
    op.create_index("ix_unanswered_created_at", "unanswered", ["created_at"])
    op.create_table(
        "referrals",
        sa.Column("payload", sa.String(64), nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_used", sa.Date, nullable=False),
        sa.Column("last_used", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("payload", name="pk_referrals"),
    )
    op.create_table(
        "news_enqueued",
        sa.Column("news_id", sa.String(64), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("news_id", name="pk_news_enqueued"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("news_id", sa.String(64), nullable=False),
        sa.Column("user_key", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("address", sa.LargeBinary, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("news_id", "user_key", name="uq_outbox_news_user"),
    )
    op.create_index("ix_outbox_user_key", "outbox", ["user_key"])
    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sync_state"),
    )


def downgrade() -> None:
    for table in ("sync_state", "outbox", "news_enqueued", "referrals", "unanswered", "events",
                  "subscriptions", "users"):
        op.drop_table(table)
