"""The PostgreSQL store's counters and unanswered questions: upserts that add, so any number of processes can write
their batches into the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.store import StoreUnavailable
from bot.storage.buffers import Stats, Unanswered, WriteBuffers
from bot.storage.common import from_db
from bot.storage.postgres.base import PG_ERRORS

if TYPE_CHECKING:
    from bot.storage.postgres.base import PostgresBase


class PgBuffers(WriteBuffers):
    """Part of the PostgreSQL store: the batch write and the reports."""

    _write_errors = (*PG_ERRORS, StoreUnavailable, TimeoutError)

    if TYPE_CHECKING:
        _pool_conn = PostgresBase._pool_conn

    async def _write_buffers(self, stats: Stats, unanswered: Unanswered) -> None:
        # always a connection of its own (never a user's turn): a batch is not part of anyone's message
        async with self._pool_conn() as con, con.transaction():
            await con.executemany(
                "INSERT INTO stats AS s (day, kind, count) VALUES ($1, $2, $3)"
                " ON CONFLICT (day, kind) DO UPDATE SET count = s.count + excluded.count",
                [(day, kind, n) for (day, kind), n in stats.items()],
            )
            # a user id that /forget removed meanwhile is stored as 0 (unlinked), never re-linked
            await con.executemany(
                "INSERT INTO unanswered AS q (normalized, user_id, count, first_seen, last_seen)"
                " VALUES ($1, CASE WHEN EXISTS (SELECT 1 FROM users WHERE id = $2) THEN $2 ELSE 0 END, $3, $4, $5)"
                " ON CONFLICT (normalized, user_id) DO UPDATE SET count = q.count + excluded.count,"
                " last_seen = GREATEST(q.last_seen, excluded.last_seen)",
                [(text, uid, n, from_db(first), from_db(last))
                 for (text, uid), (n, first, last) in unanswered.items()],
            )

    async def unanswered(self, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        await self.flush()
        query = "SELECT normalized, SUM(count) AS count, MAX(last_seen) AS last_seen FROM unanswered"
        params: list[Any] = []
        if since is not None:
            query += " WHERE last_seen >= $1"
            params.append(since)
        query += f" GROUP BY normalized ORDER BY count DESC, last_seen DESC LIMIT ${len(params) + 1}"
        async with self._pool_conn() as con:
            rows = await con.fetch(query, *params, limit)
        return [{"text": r["normalized"], "count": int(r["count"]), "last_seen": r["last_seen"]} for r in rows]

    async def stats(self, since: datetime | None = None) -> dict[str, int]:
        await self.flush()
        query = "SELECT kind, SUM(count) AS n FROM stats"
        params: list[Any] = []
        if since is not None:
            query += " WHERE day >= $1"
            params.append(since.astimezone(UTC).strftime("%Y-%m-%d"))
        async with self._pool_conn() as con:
            rows = await con.fetch(query + " GROUP BY kind", *params)
        return {r["kind"]: int(r["n"]) for r in rows}
