"""The database tables. Each column says why it is kept; nothing else about people is."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s",
})

# One row per person who set a preference. `key` is an HMAC of transport and platform id under
# a secret from the environment: the platform id itself is never stored.
users = Table(
    "users", metadata,
    Column("key", String(64), primary_key=True),
    Column("municipality", String(64), nullable=False, server_default="kassel"),  # whose city the row belongs to
    Column("language", String(8)),  # to answer in the language the person chose
    Column("district", String(64)),  # to prefer offers near them, as they asked
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Topics a person asked news about. `address` is where to deliver it (the chat id, encrypted
# with the secret): without it no news could reach them. Deleted with the subscription.
subscriptions = Table(
    "subscriptions", metadata,
    Column("user_key", String(64), ForeignKey("users.key", ondelete="CASCADE"), primary_key=True),
    Column("topic", String(32), primary_key=True),
    Column("transport", String(16), nullable=False),
    Column("address", LargeBinary, nullable=False),
)

# Anonymous usage figures for the city's education monitoring: no user key, only the day.
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False, index=True),
    Column("municipality", String(64), nullable=False, server_default="kassel"),  # whose city the row belongs to
    Column("kind", String(16), nullable=False),  # question, feedback, start
    Column("transport", String(16), nullable=False),
    Column("language", String(8)),
    Column("topic", String(32)),
    Column("offer", String(64)),
    Column("answered", Boolean),
    Column("helpful", Boolean),
    Column("payload", String(64)),  # the deep-link payload of a start (multiplier links)
)

# Questions the bot could not answer, scrubbed of phone numbers, e-mail and digit runs, so that
# editors can add what is missing; purged after the configured number of days.
unanswered = Table(
    "unanswered", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("municipality", String(64), nullable=False, server_default="kassel"),  # whose city the row belongs to
    Column("language", String(8)),
    Column("text", Text, nullable=False),
)

# How often each multiplier link was used (counts only).
referrals = Table(
    "referrals", metadata,
    Column("municipality", String(64), primary_key=True, server_default="kassel"),
    Column("payload", String(64), primary_key=True),
    Column("known", Boolean, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_used", Date, nullable=False),
    Column("last_used", Date, nullable=False),
)

# News items already fanned out into the outbox, so that each is enqueued once.
news_enqueued = Table(
    "news_enqueued", metadata,
    Column("municipality", String(64), primary_key=True, server_default="kassel"),
    Column("news_id", String(64), primary_key=True),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
)

# One row per news message to deliver; `sent_at` is set right after it was sent, so a crash
# repeats at most the one message in flight and never skips one.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("municipality", String(64), nullable=False, server_default="kassel"),  # whose city the row belongs to
    Column("news_id", String(64), nullable=False),
    Column("user_key", String(64), nullable=False, index=True),
    Column("transport", String(16), nullable=False),
    Column("address", LargeBinary, nullable=False),
    Column("language", String(8), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("news_id", "user_key", name="uq_outbox_news_user"),
)

# Positions a transport must resume from (Telegram update offset, Matrix sync token).
sync_state = Table(
    "sync_state", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Platform updates already answered (Telegram update ids, Matrix event ids), so that an update
# delivered again after a crash is not answered twice; kept a week. Keyed by transport (with the
# municipality's bot) and id, so that several replicas sharing the database can use it too: a
# replica claims an update (claimed_by, lease_until) before answering it; answered_at is set once
# answered. A claim whose lease ran out without an answer may be taken by another replica.
answered_updates = Table(
    "answered_updates", metadata,
    Column("transport", String(64), primary_key=True),
    Column("update_id", String(255), primary_key=True),
    Column("answered_at", DateTime(timezone=True), index=True),
    Column("claimed_by", String(64)),  # the replica answering it (host-pid-random), no person's data
    Column("lease_until", DateTime(timezone=True)),
)

# Which replica runs a leader job (news, retention, catalogue watcher, Matrix sync) until when.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
