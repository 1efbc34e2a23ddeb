"""The durable inbox on PostgreSQL: received updates, committed before the platform is told it may forget them.

The same contract as the SQLite inbox (``bot.core.store.Inbox``): ``add`` returns the ids that were new, ``pending``
replays what was never answered, ``done`` marks are batched. Several processes draining one inbox hold its chats
through ``PgChatQueue`` (bot/storage/postgres/chat_queue.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.store import InboxUnavailable, StoreUnavailable
from bot.storage.inbox_marks import DoneMarks
from bot.storage.postgres.base import PG_ERRORS
from bot.storage.postgres.store import PostgresStore

log = logging.getLogger(__name__)

KEEP_DONE = timedelta(days=2)
#: an insert, read or mark waits at most this long; then the update is handled from memory (never late)
WRITE_SECONDS = 1.0
_ERRORS = (*PG_ERRORS, StoreUnavailable, TimeoutError)


class PgInbox:
    """Pending and recently done updates of one platform, shared by every process on the database."""

    def __init__(self, store: PostgresStore, platform: str) -> None:
        self._store = store
        self.platform = platform
        self._open = False
        self._marks = DoneMarks(self._mark, lambda: self._open)

    @property
    def durable(self) -> bool:
        return True

    @contextlib.asynccontextmanager
    async def _con(self) -> Any:
        try:
            async with asyncio.timeout(WRITE_SECONDS), self._store._pool_conn() as con:
                yield con
        except _ERRORS as exc:
            raise InboxUnavailable(str(exc) or type(exc).__name__) from exc

    async def open(self) -> None:
        async with self._con() as con:
            await con.execute(
                "DELETE FROM inbox WHERE platform = $1 AND state = 'done' AND done_at < $2",
                self.platform, datetime.now(UTC) - KEEP_DONE,
            )
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        try:
            await self._marks.close()
        finally:
            self._open = False

    async def add(self, updates: Sequence[tuple[int, str, dict[str, Any]]]) -> set[int]:
        """Store ``(update_id, chat_key, payload)`` rows in one transaction; returns the ids that were new."""
        if not updates:
            return set()
        now = datetime.now(UTC)
        async with self._con() as con:
            rows = await con.fetch(
                "INSERT INTO inbox (platform, update_id, chat_key, payload, received_at)"
                " SELECT $1, u.id, u.chat, u.payload, $5"
                " FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u (id, chat, payload)"
                " ON CONFLICT (platform, update_id) DO NOTHING RETURNING update_id",
                self.platform, [u[0] for u in updates], [u[1] for u in updates],
                [json.dumps(u[2]) for u in updates], now,
            )
        return {int(r[0]) for r in rows}

    async def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """Updates stored but not answered, oldest first (to replay at start)."""
        async with self._con() as con:
            rows = await con.fetch(
                "SELECT update_id, payload FROM inbox WHERE platform = $1 AND state = 'pending' ORDER BY update_id",
                self.platform,
            )
        return self._decoded(rows)

    def _decoded(self, rows: Iterable[Any]) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for row in rows:
            try:
                out.append((int(row["update_id"]), json.loads(row["payload"])))
            except ValueError:
                log.warning("inbox: update %s is unreadable; skipped", row["update_id"])
                self.done(int(row["update_id"]))
        return out

    async def last_id(self) -> int | None:
        async with self._con() as con:
            value = await con.fetchval("SELECT MAX(update_id) FROM inbox WHERE platform = $1", self.platform)
        return int(value) if value is not None else None

    # ----------------------------------------------------------------- done marks
    def done(self, update_id: int) -> None:
        self._marks.add(update_id)

    async def flush(self) -> None:
        await self._marks.flush()

    async def _mark(self, ids: list[int]) -> None:
        async with self._con() as con:
            await con.execute(
                "UPDATE inbox SET state = 'done', payload = '', done_at = $3"
                " WHERE platform = $1 AND update_id = ANY($2::bigint[])",
                self.platform, ids, datetime.now(UTC),
            )

    async def count(self, state: str) -> int:
        async with self._con() as con:
            return int(await con.fetchval(
                "SELECT COUNT(*) FROM inbox WHERE platform = $1 AND state = $2", self.platform, state
            ))
