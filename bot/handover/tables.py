"""The handover tables, in the store's metadata. Each column says why it is kept."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, LargeBinary, String, Table

from bot.store.schema import metadata

# One row per conversation handed to the counsellors, from the newcomer's consent on. Nothing is
# stored before consent. `user_key` is the pseudonymous key (to find the person's open case),
# `address` the chat to answer in, encrypted like a news subscriber's; the question, sealed too,
# is what the newcomer agreed to share. Closed cases are purged after the retention period.
cases = Table(
    "handover_cases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(8), nullable=False, unique=True),  # the short case number both sides see
    Column("user_key", String(64), nullable=False, index=True),
    Column("transport", String(16), nullable=False),
    Column("address", LargeBinary, nullable=False),
    Column("language", String(8), nullable=False),  # shared: counsellors answer in it or look for help
    Column("topic", String(32)),  # the topic the bot had decided on, if any (and for the figures)
    Column("question", LargeBinary),  # sealed; emptied once posted to the counsellors
    Column("offers", String(255), nullable=False, default=""),  # offer ids the bot already suggested
    Column("state", String(12), nullable=False),  # consented, open, closed
    Column("thread_id", String(255), index=True),  # the Matrix event that opened the case's thread
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("opened_at", DateTime(timezone=True)),  # posted to the counsellors
    Column("first_answer_at", DateTime(timezone=True)),  # a counsellor's first reply (figures)
    Column("closed_at", DateTime(timezone=True), index=True),
    Column("closed_by", String(12)),  # newcomer, counsellor, forget
    # each city's counsellors see and answer only their city's cases
    Column("municipality", String(64), nullable=False, server_default="kassel"),
)

# Messages on their way between a newcomer and the counsellors. Written before the sender is
# told anything, marked when delivered, so a restart loses none; the text is sealed and emptied
# once delivered. `source_id` (a counsellor's Matrix event) makes a repeated sync harmless.
relays = Table(
    "handover_relays", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("handover_cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("direction", String(16), nullable=False),  # to_counsellors, to_newcomer
    Column("kind", String(12), nullable=False),  # text, closed
    Column("body", LargeBinary),
    Column("source_id", String(255), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), index=True),
)
