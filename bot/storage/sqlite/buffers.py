"""Counters and unanswered questions: buffered in memory, written in batches, never making a reply wait."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.store import StoreUnavailable
from bot.storage.common import from_db, to_db
from bot.storage.sqlite.base import SQLITE_ERRORS

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger(__name__)

#: buffered counters and unanswered questions are written once this many are waiting
FLUSH_EVERY = 256
#: what a failed write of the buffers can raise (kept for the next try)
_WRITE_ERRORS = (*SQLITE_ERRORS, StoreUnavailable)


class BufferedWrites:
    """Part of the Store: daily counters and the unanswered-questions log (per asker, already masked)."""

    path: str
    _lock: asyncio.Lock
    _pending_stats: dict[tuple[str, str], int]
    _pending_unanswered: dict[tuple[str, int], tuple[int, str, str]]
    _flushing: asyncio.Task[None] | None

    if TYPE_CHECKING:
        @property
        def db(self) -> aiosqlite.Connection: ...

        def _now(self) -> datetime: ...

        async def check_file(self) -> None: ...

    async def record_unanswered(self, normalized: str, user_id: int | None = None) -> None:
        """Count an unmatched question (already masked) per asker, so /forget and /mydata find it; batched."""
        if not normalized:
            return
        now = to_db(self._now())
        key = (normalized, user_id or 0)
        count, first, _ = self._pending_unanswered.get(key, (0, now, now))
        self._pending_unanswered[key] = (count + 1, first, now)
        await self._maybe_flush()

    async def increment(self, kind: str, n: int = 1) -> None:
        """Bump a daily counter (messages, answered, did-you-mean, fallback, escalation-...)."""
        key = (self._now().strftime("%Y-%m-%d"), kind)
        self._pending_stats[key] = self._pending_stats.get(key, 0) + n
        await self._maybe_flush()

    async def _maybe_flush(self) -> None:
        """A full buffer is written by a background task: counting never makes a reply wait for the disk."""
        if len(self._pending_stats) + len(self._pending_unanswered) < FLUSH_EVERY:
            return
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_logged(), name="store-flush")

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except _WRITE_ERRORS as exc:
            log.warning("could not write buffered counters (kept for the next try): %s", exc)

    async def settled(self) -> None:
        """Wait for a background flush started by a full buffer (tests, shutdown)."""
        if self._flushing is not None:
            await asyncio.wait({self._flushing})

    async def flush(self) -> None:
        """Check the file is still there, then write buffered counters and unanswered questions in one transaction."""
        await self.check_file()
        if not self._pending_stats and not self._pending_unanswered:
            return
        stats, self._pending_stats = self._pending_stats, {}
        unanswered, self._pending_unanswered = self._pending_unanswered, {}
        try:
            await self._write_buffers(stats, unanswered)
        except _WRITE_ERRORS as exc:  # best effort: kept for the next flush, logged, never raised to a reply
            self._restore_buffers(stats, unanswered)
            log.warning("could not write counters and unanswered questions to %s (kept for later): %s", self.path, exc)
        except BaseException:
            self._restore_buffers(stats, unanswered)
            raise

    def _restore_buffers(
        self, stats: dict[tuple[str, str], int], unanswered: dict[tuple[str, int], tuple[int, str, str]]
    ) -> None:
        """Put back what could not be written (disk full, locked), bounded so an outage cannot eat the memory."""
        for key, n in stats.items():
            self._pending_stats[key] = self._pending_stats.get(key, 0) + n
        for key, (n, first, last) in unanswered.items():
            if key not in self._pending_unanswered and len(self._pending_unanswered) >= 4 * FLUSH_EVERY:
                continue  # dropped: a question log is not worth unbounded memory
            had = self._pending_unanswered.get(key)
            self._pending_unanswered[key] = (n + had[0], min(first, had[1]), max(last, had[2])) if had else (
                n, first, last)

    async def _write_buffers(
        self, stats: dict[tuple[str, str], int], unanswered: dict[tuple[str, int], tuple[int, str, str]]
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
        async with self.db.execute(query, (*params, limit)) as cur:
            rows = await cur.fetchall()
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
        async with self.db.execute(query + " GROUP BY kind", params) as cur:
            rows = await cur.fetchall()
        return {r["kind"]: int(r["n"]) for r in rows}
