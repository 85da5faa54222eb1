"""Persistence: SQLAlchemy (async) on SQLite by default or PostgreSQL via DATABASE_URL."""

from bot.store.privacy import Pseudonyms, SecretError, load_secret, scrub
from bot.store.store import OutboxItem, Prefs, Store, StoreError, sqlite_url

__all__ = ["OutboxItem", "Prefs", "Pseudonyms", "SecretError", "Store", "StoreError", "load_secret", "scrub", "sqlite_url"]
