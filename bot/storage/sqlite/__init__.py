"""The SQLite store: the default, for one bot process on one file."""

from bot.storage.sqlite.health import DatabaseUnusable
from bot.storage.sqlite.store import SQLiteStore

__all__ = ["DatabaseUnusable", "SQLiteStore"]
