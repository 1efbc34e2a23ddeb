"""Stores behind the core's Store port (``bot.core.store``): SQLite (default) and PostgreSQL (many processes).

Everything outside ``bot/storage`` gets a store, inbox or moderators' log through these factories, by location:
a SQLite file path, ``sqlite:///FILE``, or ``postgresql://USER@HOST:PORT/DB`` (password from
RUNBOT_DATABASE_PASSWORD).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.faq_editing import ModerationLog
from bot.core.notices import SeenNotices
from bot.core.ports import StartupError
from bot.core.ratelimit import FloodControl
from bot.core.store import ChatQueue, Inbox, Store, StoreUnavailable, new_owner

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(POSTGRES_SCHEMES)


def sqlite_file(location: str | Path) -> str:
    """The SQLite file of a path or ``sqlite:///FILE`` url (``sqlite:////abs`` for an absolute path)."""
    text = str(location)
    return text[len("sqlite:///"):] if text.startswith("sqlite:///") else text


def make_store(location: str | Path, *, clock: Any = None, pool_size: int | None = None) -> Store:
    """The store for ``location`` (not opened yet); ``pool_size``: PostgreSQL connections per process."""
    if is_postgres(location):
        try:
            from bot.storage.postgres import PostgresStore
        except ImportError:
            raise StartupError(
                "database.url is a PostgreSQL database: install the driver with pip install 'runbot[postgres]'"
            ) from None
        return PostgresStore(str(location), clock=clock, **({"pool_size": pool_size} if pool_size else {}))
    from bot.storage.sqlite import SQLiteStore

    return SQLiteStore(sqlite_file(location), clock=clock)


def make_inbox(store: Store, platform: str) -> Inbox | None:
    """The durable inbox on ``store``'s database (None for an in-memory database: nothing would survive)."""
    from bot.storage.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        if store.path == ":memory:":
            return None
        from bot.storage.sqlite.inbox import SQLiteInbox

        return SQLiteInbox(store.path, platform, store=store)
    if _on_postgres(store):
        from bot.storage.postgres.inbox import PgInbox

        return PgInbox(store, platform)  # type: ignore[arg-type]
    return None  # another Store (a test's in-memory fake): updates live in memory


def make_chat_queue(inbox: Inbox) -> ChatQueue:
    """The shared side of ``inbox`` for this process (telegram.inbox: shared, and the poller's lease)."""
    from bot.storage.sqlite.inbox import SQLiteInbox

    if isinstance(inbox, SQLiteInbox):
        from bot.storage.sqlite.chat_queue import SQLiteChatQueue

        return SQLiteChatQueue(inbox, new_owner())
    from bot.storage.postgres.chat_queue import PgChatQueue
    from bot.storage.postgres.inbox import PgInbox

    assert isinstance(inbox, PgInbox)
    return PgChatQueue(inbox, new_owner())


def make_moderation_log(store: Store) -> ModerationLog:
    """The moderators' log (FAQ changes from the chat, ignored questions, digests sent) on ``store``'s database."""
    from bot.storage.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from bot.storage.sqlite.moderation import SqliteModerationLog

        return SqliteModerationLog(store)
    if not _on_postgres(store):  # another Store (a test's in-memory fake): the log is "storage unavailable"
        return _NoModerationLog()  # type: ignore[return-value]
    from bot.storage.postgres.moderation import PgModerationLog

    return PgModerationLog(store)  # type: ignore[arg-type]


def make_seen_notices(store: Store, keep_days: int) -> SeenNotices | None:
    """Who has seen the first-message notice, shared through the database on PostgreSQL (kept ``keep_days``); None
    otherwise (one process remembers it in memory)."""
    if not _on_postgres(store):
        return None
    from bot.storage.postgres.flood import PgSeenNotices

    return PgSeenNotices(store, keep_days)  # type: ignore[arg-type]


class _NoModerationLog:
    """For a Store with no moderators' tables: every call raises StoreUnavailable, as a database that is down."""

    def __getattr__(self, name: str) -> Any:
        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable(f"this store keeps no moderators' log ({name})")

        return unavailable


def _on_postgres(store: Store) -> bool:
    """Without importing asyncpg when it is not needed."""
    return type(store).__module__.startswith("bot.storage.postgres")


def make_flood_control(store: Store, settings: Any) -> FloodControl | None:
    """Flood control shared through the database on PostgreSQL (several processes answer the same people); None
    otherwise: the engine's own, in memory. ``settings``: the core settings (rate_limit, safety)."""
    if not _on_postgres(store):
        return None
    from bot.storage.postgres.flood import PgFloodControl

    rl, window = settings.rate_limit, settings.safety.repeat_escalation_seconds
    return PgFloodControl(store, rl.messages, rl.per_seconds, rl.burst, window)  # type: ignore[arg-type]
