"""The durable inbox: received platform updates, written before they are confirmed to the platform.

Table ``inbox`` (migration 0002) in the bot's database file, written through the Store's own connection and under
its write lock when one is given (one writer per process: the inbox and the Store no longer compete for SQLite's
write lock), else through a connection of its own. Each add is committed with ``synchronous = FULL`` so a row is on
disk before the platform is told it may forget the update: after a crash or a power cut every update the platform
no longer holds is still here. ``done()`` marks are batched (written within ``FLUSH_SECONDS``:
bot/storage/inbox_marks.py), so a crash can replay the few updates answered in the last moments: at most once more.

A done row keeps only the update id (payload cleared at once, row purged after ``KEEP_DONE``), so message text
stays in the database only while its answer is outstanding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.core.store import InboxUnavailable
from bot.storage.inbox_marks import DoneMarks
from bot.storage.sqlite.rows import fetch_all, fetch_one

if TYPE_CHECKING:
    from bot.storage.sqlite.store import SQLiteStore

log = logging.getLogger(__name__)

#: how long a write waits for a lock held by another connection before the update is handled from memory (a locked
#: database must not delay an answer, least of all an emergency one)
BUSY_MS = 1000
KEEP_DONE = timedelta(days=2)
#: rows per statement (5 parameters each: well under SQLite's limit of 32,766)
CHUNK = 200
_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    platform TEXT NOT NULL, update_id INTEGER NOT NULL, chat_key TEXT NOT NULL, payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', received_at TEXT NOT NULL, done_at TEXT,
    PRIMARY KEY (platform, update_id)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (platform, state, update_id);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SQLiteInbox:
    """Pending and recently done updates of one platform in one database file."""

    def __init__(self, path: str | Path, platform: str, *, store: SQLiteStore | None = None) -> None:
        """``store``: share its connection and write lock (``path`` must be its file); None: a connection of its own."""
        self.path = str(path)
        self.platform = platform
        self._store = store
        self._db: aiosqlite.Connection | None = None
        self._lock = store._lock if store is not None else asyncio.Lock()
        self._marks = DoneMarks(self._mark, lambda: self._db is not None)

    @property
    def durable(self) -> bool:
        return self.path != ":memory:"

    async def open(self) -> None:
        """Raises InboxUnavailable when the database cannot be opened or written (locked, full, unreadable)."""
        try:
            await self._open()
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc) or type(exc).__name__) from exc

    async def _open(self) -> None:
        cutoff = (datetime.now(UTC) - KEEP_DONE).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        purge = "DELETE FROM inbox WHERE platform = ? AND state = 'done' AND done_at < ?", (self.platform, cutoff)
        if self._store is not None:  # the Store migrated the file (table inbox) and set WAL and its busy timeout
            db = self._store.db
            async with self._locked():
                await db.execute(*purge)
            self._db = db
            return
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # short: while another process holds the write lock, updates are answered from memory after this wait
            # (an emergency reply must go out within 3 s, issue 14 item 1)
            await db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if self.durable:
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = FULL")
            await db.executescript(_SCHEMA)  # no-op once migration 0002 ran; needed for an in-memory database
            await db.execute(*purge)
        except BaseException:
            await db.close()
            raise
        self._db = db

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """The write lock, waited for at most ``BUSY_MS`` (the Store may be inside a slow transaction: an update is
        then handled from memory rather than late)."""
        try:
            await asyncio.wait_for(self._lock.acquire(), BUSY_MS / 1000)
        except TimeoutError:
            raise InboxUnavailable("the database is busy") from None
        try:
            yield
        finally:
            self._lock.release()

    async def _durably(self, sql: str, params: Sequence[Any]) -> None:
        """One statement committed with ``synchronous = FULL`` (on the Store's connection only for this commit:
        the Store's own writes keep ``NORMAL``)."""
        if self._store is None or not self.durable:
            await self.db.execute(sql, params)
            return
        await self.db.execute("PRAGMA synchronous = FULL")
        try:
            await self.db.execute(sql, params)
        finally:
            await self.db.execute("PRAGMA synchronous = NORMAL")

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            await self._marks.close()
        finally:
            if self._store is None:  # the Store's connection is the Store's to close
                await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None or (self._store is not None and self._store._db is not self._db):
            raise InboxUnavailable("the inbox is not open")
        return self._db

    async def add(self, updates: Sequence[tuple[int, str, dict[str, Any]]]) -> set[int]:
        """Store ``(update_id, chat_key, payload)`` rows in one transaction; returns the ids that were new (an id
        seen before, pending or done, is not handled twice). Raises InboxUnavailable."""
        if not updates:
            return set()
        now = _now()
        try:
            async with self._locked():
                known = await self._known([u[0] for u in updates])
                rows = [(self.platform, uid, key, json.dumps(p), now) for uid, key, p in updates if uid not in known]
                # one statement (one implicit transaction inside one call to the database thread): the write lock
                # is never held while the event loop runs other work, so the Store's writes are not kept waiting
                for start in range(0, len(rows), CHUNK):
                    chunk = rows[start : start + CHUNK]
                    await self._durably(
                        "INSERT OR IGNORE INTO inbox (platform, update_id, chat_key, payload, received_at) VALUES "
                        + ",".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                        [value for row in chunk for value in row],
                    )
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc)) from exc
        return {row[1] for row in rows}

    async def _known(self, ids: list[int]) -> set[int]:
        marks = ",".join("?" * len(ids))
        rows = await fetch_all(
            self.db, f"SELECT update_id FROM inbox WHERE platform = ? AND update_id IN ({marks})", (self.platform, *ids)
        )
        return {int(r[0]) for r in rows}

    async def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """Updates stored but not answered, oldest first (to replay at start)."""
        try:
            rows = await fetch_all(
                self.db,
                "SELECT update_id, payload FROM inbox WHERE platform = ? AND state = 'pending' ORDER BY update_id",
                (self.platform,),
            )
        except aiosqlite.Error as exc:
            raise InboxUnavailable(str(exc)) from exc
        out = []
        for update_id, payload in rows:
            try:
                out.append((int(update_id), json.loads(payload)))
            except ValueError:
                log.warning("inbox: update %s is unreadable; skipped", update_id)
                self.done(int(update_id))
        return out

    async def last_id(self) -> int | None:
        """The highest update id ever stored (the next fetch starts after it)."""
        try:
            row = await fetch_one(self.db, "SELECT MAX(update_id) FROM inbox WHERE platform = ?", (self.platform,))
        except aiosqlite.Error as exc:
            raise InboxUnavailable(str(exc)) from exc
        return int(row[0]) if row and row[0] is not None else None

    def done(self, update_id: int) -> None:
        """Mark an update answered (written within ``FLUSH_SECONDS``; while the database fails, retried every
        ``RETRY_SECONDS``: bot/storage/inbox_marks.py)."""
        self._marks.add(update_id)

    async def flush(self) -> None:
        await self._marks.flush()

    async def _mark(self, ids: list[int]) -> None:
        now = _now()
        try:
            async with self._locked():
                for start in range(0, len(ids), CHUNK):
                    chunk = ids[start : start + CHUNK]
                    await self.db.execute(
                        "UPDATE inbox SET state = 'done', payload = '', done_at = ? WHERE platform = ? AND update_id"
                        " IN (" + ",".join("?" * len(chunk)) + ")",
                        (now, self.platform, *chunk),
                    )
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc)) from exc

    async def count(self, state: str) -> int:
        row = await fetch_one(
            self.db, "SELECT COUNT(*) FROM inbox WHERE platform = ? AND state = ?", (self.platform, state)
        )
        return int(row[0]) if row else 0
