"""Stores behind the core's Store port (``bot.core.store``): SQLite (default) and PostgreSQL (many processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.faq_editing import ModerationLog
from bot.core.store import ChatQueue, Inbox, Store, new_owner


def make_store(location: str | Path, *, clock: Any = None) -> Store:
    """The store for ``location``: a SQLite file path (or ``:memory:``)."""
    from bot.storage.sqlite import SQLiteStore

    return SQLiteStore(location, clock=clock)


def make_inbox(store: Store, platform: str) -> Inbox | None:
    """The durable inbox on ``store``'s database (None for an in-memory database: nothing would survive)."""
    from bot.storage.sqlite import SQLiteStore
    from bot.storage.sqlite.inbox import SQLiteInbox

    if isinstance(store, SQLiteStore) and store.path != ":memory:":
        return SQLiteInbox(store.path, platform, store=store)
    return None


def make_chat_queue(inbox: Inbox) -> ChatQueue:
    """The shared side of ``inbox`` for this process (telegram.inbox: shared, and the poller's lease)."""
    from bot.storage.sqlite.chat_queue import SQLiteChatQueue
    from bot.storage.sqlite.inbox import SQLiteInbox

    assert isinstance(inbox, SQLiteInbox)
    return SQLiteChatQueue(inbox, new_owner())


def make_moderation_log(store: Store) -> ModerationLog:
    """The moderators' log (FAQ changes from the chat, ignored questions, digests sent) on ``store``'s database."""
    from bot.storage.sqlite.moderation import SqliteModerationLog

    return SqliteModerationLog(store)  # type: ignore[arg-type]
