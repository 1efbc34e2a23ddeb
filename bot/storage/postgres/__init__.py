"""The PostgreSQL store (asyncpg): for several bot processes on one database."""

from bot.storage.postgres.base import PASSWORD_ENV, DatabaseUnusable, safe_url
from bot.storage.postgres.store import PostgresStore

__all__ = ["PASSWORD_ENV", "DatabaseUnusable", "PostgresStore", "safe_url"]
