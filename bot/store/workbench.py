"""The workbench's tables: editors' accounts and sessions, the revisions of catalogue items and
what editors decided about unanswered questions. Nothing here is about the bot's users."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table, Text

from bot.store.schema import metadata

# People who edit the catalogue; created from the command line, never by sign-up.
accounts = Table(
    "accounts", metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(32), nullable=False),  # editor, admin, translator:<lang>
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the city whose catalogue the account edits (names are unique across the deployment)
    Column("municipality", String(64), nullable=False, server_default="kassel"),
)

# Signed-in browsers. `token_hash` is a SHA-256 of the cookie value, so a copy of the database
# signs no one in; ended by signing out, by expiry or by removing the account.
web_sessions = Table(
    "web_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Every save from the workbench: who changed which item, when, and the item before and after
# (the YAML text of its fields), for history, diff and revert.
revisions = Table(
    "revisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item", String(128), nullable=False, index=True),  # offer:<id>:<lang> or office:<id>:<lang>
    Column("author", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("before", Text, nullable=False),
    Column("after", Text, nullable=False),
    Column("municipality", String(64), nullable=False, server_default="kassel"),
)

# What an editor did with an unanswered question (by `unanswered.id`): added as an example, "no
# offer for this", or dismissed. No copy of the question: its text goes with the retention job.
inbox_decisions = Table(
    "inbox_decisions", metadata,
    Column("question_id", Integer, primary_key=True),
    Column("decision", String(16), nullable=False),  # example, no-offer, dismissed
    Column("offer", String(64)),
    Column("author", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
