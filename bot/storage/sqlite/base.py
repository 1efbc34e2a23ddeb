"""The SQLite store's connection: opening (and checking) the file, migrations by ``PRAGMA user_version``, closing."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.core.lru import LruCache
from bot.core.store import StoreUnavailable, User
from bot.storage.common import SchemaTooNew, migrations
from bot.storage.sqlite.health import (
    BUSY_TIMEOUT_MS,
    DatabaseUnusable,
    _close_quietly,
    adopt_recovered,
    describe_open_error,
    file_identity,
)
from bot.storage.sqlite.rows import fetch_one

log = logging.getLogger(__name__)

#: users kept in memory per process; the rest are read from the database when they next write
USER_CACHE_LIMIT = 10_000
#: the driver's errors that mean "storage is unavailable right now" (full, locked, gone, closed) rather than a bug
SQLITE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, ValueError)


class SQLiteBase:
    """The connection, the write lock (one writer per process) and the schema."""

    def __init__(self, path: str | Path, *, clock: Any = None) -> None:
        self.path = str(path)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._user_cache: LruCache[tuple[str, str], User] = LruCache(USER_CACHE_LIMIT)
        self._pending_stats: dict[tuple[str, str], int] = {}
        self._pending_unanswered: dict[tuple[str, int], tuple[int, str, str]] = {}
        self._flushing: asyncio.Task[None] | None = None
        #: (st_dev, st_ino) of the file when it was opened: a different or missing file means it was deleted
        self._identity: tuple[int, int] | None = None
        self.file_lost = False
        #: called with a one-line problem report (the database file vanished); set by bootstrap
        self.on_problem: Callable[[str], Awaitable[None]] | None = None

    def describe(self) -> str:
        return f"SQLite database {self.path}"

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Open (creating) the file and migrate it; a file that cannot be used raises DatabaseUnusable (one line)."""
        try:
            if self.path != ":memory:":
                await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
                await asyncio.to_thread(adopt_recovered, self.path)
            self._db = await self._connect(self.path)
            if self.path != ":memory:":
                await self._quick_check()
            await self._migrate()
            if self.path != ":memory:":
                await self._write_probe()
                self._identity = await asyncio.to_thread(file_identity, self.path)
        except BaseException as exc:
            # the connection's thread is not a daemon: a connection left open keeps the process alive forever
            await self._abandon()
            if isinstance(exc, (*SQLITE_ERRORS, SchemaTooNew)):
                raise DatabaseUnusable(await asyncio.to_thread(describe_open_error, self.path, exc)) from None
            raise

    @staticmethod
    async def _connect(path: str) -> aiosqlite.Connection:
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path != ":memory:":
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await _close_quietly(db)
            raise
        return db

    async def _abandon(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await _close_quietly(db)

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._flushing is not None:
                await asyncio.wait({self._flushing}, timeout=1.0)
            await self.flush()
            lost = len(self._pending_stats) + len(self._pending_unanswered)
            if lost:
                log.warning("%d counter(s) and unanswered question(s) could not be written and are lost", lost)
            if self.file_lost:
                await self._save_recovered()  # the copy the next start adopts, now with everything
        except (*SQLITE_ERRORS, StoreUnavailable) as exc:  # full or locked at shutdown: one line, never a traceback
            log.error("could not write the last counters to %s: %s", self.path, exc)
        finally:
            await self._abandon()

    async def __aenter__(self) -> Any:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailable("the store is not open")
        return self._db

    async def _migrate(self) -> None:
        current = await self.schema_version()
        known = migrations("sqlite")
        newest = known[-1][0] if known else 0
        if current > newest:
            raise SchemaTooNew(current, newest)
        for version, sql in known:
            if version <= current:
                continue
            log.info("applying database migration %04d", version)
            await self.db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")

    async def schema_version(self) -> int:
        row = await fetch_one(self.db, "PRAGMA user_version")
        return int(row[0]) if row else 0

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    if TYPE_CHECKING:  # provided by the other parts of the store

        async def flush(self) -> None: ...

        async def _quick_check(self) -> None: ...

        async def _write_probe(self) -> None: ...

        async def _save_recovered(self) -> str | None: ...
