"""Cases handed to the city's counsellors and the messages relayed in them (bot/handover).

Revision ID: 0005_handover
Revises: 0004_web
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_handover"
down_revision = "0004_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handover_cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(8), nullable=False),
        sa.Column("user_key", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("address", sa.LargeBinary, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(32)),
        sa.Column("question", sa.LargeBinary),
        sa.Column("offers", sa.String(255), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("thread_id", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("first_answer_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by", sa.String(12)),
        sa.PrimaryKeyConstraint("id", name="pk_handover_cases"),
        sa.UniqueConstraint("number", name="uq_handover_cases_number"),
    )
    op.create_index("ix_handover_cases_user_key", "handover_cases", ["user_key"])
    op.create_index("ix_handover_cases_thread_id", "handover_cases", ["thread_id"])
    op.create_index("ix_handover_cases_closed_at", "handover_cases", ["closed_at"])
    op.create_table(
        "handover_relays",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("body", sa.LargeBinary),
        sa.Column("source_id", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_handover_relays"),
        sa.ForeignKeyConstraint(["case_id"], ["handover_cases.id"], ondelete="CASCADE",
                                name="fk_handover_relays_case_id_handover_cases"),
        sa.UniqueConstraint("source_id", name="uq_handover_relays_source_id"),
    )
    op.create_index("ix_handover_relays_case_id", "handover_relays", ["case_id"])
    op.create_index("ix_handover_relays_sent_at", "handover_relays", ["sent_at"])


def downgrade() -> None:
    op.drop_table("handover_relays")
    op.drop_table("handover_cases")
