"""The SQLite store (the default): one file, WAL mode, one writer per process, through aiosqlite."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.storage.common import translate_errors
from bot.storage.sqlite.base import SQLITE_ERRORS, SQLiteBase
from bot.storage.sqlite.buffers import SQLiteBuffers
from bot.storage.sqlite.followups import FollowupRows
from bot.storage.sqlite.health import FileChecks
from bot.storage.sqlite.users import UserRows


@translate_errors(SQLITE_ERRORS)
class SQLiteStore(UserRows, FollowupRows, SQLiteBuffers, FileChecks, SQLiteBase):
    """Per-user state, escalation log, unanswered questions, follow-ups and counters in one SQLite file.

    Meant for one bot process (any number of ``runbot followups run-due`` beside it: claims are safe across
    processes); many bot processes need PostgreSQL. ``serialized`` orders one user's messages within this process.
    """

    @contextlib.asynccontextmanager
    async def serialized(self, platform: str, platform_user_id: str) -> AsyncIterator[None]:
        """One message of a user at a time in this process (the lock goes when nobody holds or waits for it)."""
        locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = self.__dict__.setdefault("_user_locks", {})
        key = (platform, platform_user_id)
        lock, users = locks.get(key, (asyncio.Lock(), 0))
        locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = locks[key]
            if users <= 1:
                del locks[key]
            else:
                locks[key] = (lock, users - 1)
