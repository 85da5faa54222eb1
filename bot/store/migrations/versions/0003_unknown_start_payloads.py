"""Forget what people typed after /start: only our own deep links are kept, the rest is 'unknown'.

Earlier versions stored any /start argument (a name, a phone number) in events.payload and
referrals.payload; a referral row with known = false is such text.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNKNOWN = "unknown"
events = sa.table("events", sa.column("kind", sa.String), sa.column("payload", sa.String))
referrals = sa.table("referrals", sa.column("payload", sa.String), sa.column("known", sa.Boolean),
                     sa.column("count", sa.Integer), sa.column("first_used", sa.Date), sa.column("last_used", sa.Date))


def upgrade() -> None:
    bind = op.get_bind()
    typed = referrals.c.known.is_(False)
    rows = bind.execute(sa.select(referrals.c.payload, referrals.c.count, referrals.c.first_used,
                                  referrals.c.last_used).where(typed)).all()
    if not rows:
        return
    bind.execute(sa.update(events).where(events.c.kind == "start",
                                         events.c.payload.in_(sa.select(referrals.c.payload).where(typed)))
                 .values(payload=UNKNOWN))
    bind.execute(sa.delete(referrals).where(typed))
    bind.execute(sa.insert(referrals).values(payload=UNKNOWN, known=False, count=sum(r.count for r in rows),
                                             first_used=min(r.first_used for r in rows),
                                             last_used=max(r.last_used for r in rows)))


def downgrade() -> None:
    pass  # what was typed is gone, as intended
