"""The SQLite store's counters and unanswered questions: its batch write and its reports."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.store import StoreUnavailable
from bot.storage.buffers import Stats, Unanswered, WriteBuffers
from bot.storage.common import from_db, to_db
from bot.storage.sqlite.base import SQLITE_ERRORS
from bot.storage.sqlite.rows import fetch_all

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger(__name__)



class SQLiteBuffers(WriteBuffers):
    """Part of the Store: daily counters and the unanswered-questions log (per asker, already masked)."""

    _lock: asyncio.Lock
    _write_errors = (*SQLITE_ERRORS, StoreUnavailable)

    if TYPE_CHECKING:
        @property
        def db(self) -> aiosqlite.Connection: ...

        def _now(self) -> datetime: ...

        async def check_file(self) -> None: ...

    async def _before_flush(self) -> None:
        await self.check_file()

    async def _write_buffers(
        self, stats: Stats, unanswered: Unanswered
    ) -> None:
        async with self._lock:
            await self.db.execute("BEGIN")
            try:
                await self.db.executemany(
                    "INSERT INTO stats (day, kind, count) VALUES (?, ?, ?)"
                    " ON CONFLICT (day, kind) DO UPDATE SET count = count + excluded.count",
                    [(day, kind, n) for (day, kind), n in stats.items()],
                )
                # a user id that /forget removed meanwhile is stored as 0 (unlinked), never re-linked
                await self.db.executemany(
                    "INSERT INTO unanswered (normalized, user_id, count, first_seen, last_seen)"
                    " VALUES (?, CASE WHEN EXISTS (SELECT 1 FROM users WHERE id = ?) THEN ? ELSE 0 END, ?, ?, ?)"
                    " ON CONFLICT (normalized, user_id) DO UPDATE SET count = count + excluded.count,"
                    " last_seen = MAX(last_seen, excluded.last_seen)",
                    [(text, uid, uid, n, first, last) for (text, uid), (n, first, last) in unanswered.items()],
                )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise

    async def unanswered(self, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        await self.flush()
        query = "SELECT normalized, SUM(count) AS count, MAX(last_seen) AS last_seen FROM unanswered"
        params: tuple[Any, ...] = ()
        if since is not None:
            query += " WHERE last_seen >= ?"
            params = (to_db(since),)
        query += " GROUP BY normalized ORDER BY count DESC, last_seen DESC LIMIT ?"
        rows = await fetch_all(self.db, query, (*params, limit))
        return [
            {"text": r["normalized"], "count": r["count"], "last_seen": from_db(r["last_seen"])} for r in rows
        ]

    async def stats(self, since: datetime | None = None) -> dict[str, int]:
        await self.flush()
        query = "SELECT kind, SUM(count) AS n FROM stats"
        params: tuple[Any, ...] = ()
        if since is not None:
            query += " WHERE day >= ?"
            params = (since.astimezone(UTC).strftime("%Y-%m-%d"),)
        rows = await fetch_all(self.db, query + " GROUP BY kind", params)
        return {r["kind"]: int(r["n"]) for r in rows}
