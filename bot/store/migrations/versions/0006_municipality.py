"""Several municipalities in one database, and several replicas on it.

Rows that belong to one city get a `municipality` column ('kassel' for everything written
before); referral counts and the news marker are unique per city. Answered updates become
claims: a replica claims an update with a lease before answering it, so that one that dies
while answering leaves it to another once the lease ran out. Leases also elect the one replica
that runs each leader job (news, retention, catalogue watcher, Matrix sync).

Revision ID: 0006_municipality
Revises: 0005_handover
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_municipality"
down_revision = "0005_handover"
branch_labels = None
depends_on = None

DEFAULT = "kassel"
PER_CITY = ("users", "events", "unanswered", "outbox", "handover_cases", "accounts", "revisions")


def _column() -> sa.Column:
    return sa.Column("municipality", sa.String(64), nullable=False, server_default=DEFAULT)


def upgrade() -> None:
    for table in PER_CITY:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_column())
    # Unique per city: the same deep link or news id may exist in two catalogues.
    for table, key in (("referrals", "payload"), ("news_enqueued", "news_id")):
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.add_column(_column())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["municipality", key])
    with op.batch_alter_table("answered_updates") as batch:
        # the bot (municipality) is part of the transport name: update ids are per bot
        batch.alter_column("transport", type_=sa.String(64), existing_nullable=False)
        batch.alter_column("answered_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch.add_column(sa.Column("claimed_by", sa.String(64)))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.execute("DELETE FROM answered_updates WHERE answered_at IS NULL")
    with op.batch_alter_table("answered_updates") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
        batch.alter_column("answered_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    for table, key in (("referrals", "payload"), ("news_enqueued", "news_id")):
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("municipality")
            batch.create_primary_key(f"pk_{table}", [key])
    for table in PER_CITY:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("municipality")
