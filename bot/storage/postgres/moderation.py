"""The moderators' log on PostgreSQL (migration 0005): ``bot.core.faq_editing.ModerationLog``, as on SQLite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.faq_editing import Change, Moderator, NewChange
from bot.storage.common import translate_errors
from bot.storage.postgres.base import PG_ERRORS
from bot.storage.postgres.store import PostgresStore


@translate_errors(PG_ERRORS)
class PgModerationLog:
    """``ModerationLog`` on the runbot database."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def record_change(self, change: NewChange) -> int:
        """Store one change; an undo also marks the change it reverted, in the same transaction."""
        async with self.store.transaction() as con:
            new_id = int(await con.fetchval(
                "INSERT INTO faq_changes (at, platform, moderator_id, moderator_name, action, file, entry_id,"
                " summary, before_bytes, after_bytes, undoes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " RETURNING id",
                change.at, change.moderator.platform, change.moderator.user_id, change.moderator.name,
                change.action, change.file, change.entry_id, change.summary, change.before, change.after,
                change.undoes,
            ))
            if change.undoes is not None:
                await con.execute("UPDATE faq_changes SET undone_by = $1 WHERE id = $2", new_id, change.undoes)
        return new_id

    async def changes(self, entry_id: str | None = None, limit: int = 10) -> list[Change]:
        async with self.store._conn() as con:
            if entry_id is None:
                rows = await con.fetch("SELECT * FROM faq_changes ORDER BY id DESC LIMIT $1", limit)
            else:
                rows = await con.fetch(
                    "SELECT * FROM faq_changes WHERE entry_id = $1 ORDER BY id DESC LIMIT $2", entry_id, limit
                )
        return [_change(r) for r in rows]

    async def change(self, change_id: int) -> Change | None:
        async with self.store._conn() as con:
            row = await con.fetchrow("SELECT * FROM faq_changes WHERE id = $1", change_id)
        return _change(row) if row else None

    async def last_undoable(self, moderator: Moderator) -> Change | None:
        async with self.store._conn() as con:
            row = await con.fetchrow(
                "SELECT * FROM faq_changes WHERE platform = $1 AND moderator_id = $2 AND undoes IS NULL"
                " AND undone_by IS NULL ORDER BY id DESC LIMIT 1",
                moderator.platform, moderator.user_id,
            )
        return _change(row) if row else None

    async def later_change(self, file: str, after_id: int) -> Change | None:
        async with self.store._conn() as con:
            row = await con.fetchrow(
                "SELECT * FROM faq_changes WHERE file = $1 AND id > $2 AND undone_by IS NULL AND undoes IS NULL"
                " ORDER BY id LIMIT 1", file, after_id,
            )
        return _change(row) if row else None

    async def ignore(self, question: str, at: datetime) -> None:
        async with self.store._conn() as con:
            await con.execute(
                "INSERT INTO faq_ignored (question, at) VALUES ($1, $2) ON CONFLICT (question) DO NOTHING", question, at
            )

    async def ignored(self) -> list[str]:
        async with self.store._conn() as con:
            return [r["question"] for r in await con.fetch("SELECT question FROM faq_ignored ORDER BY at")]

    async def claim_digest(self, week: str, at: datetime) -> bool:
        """True for the one caller (in any process) that records ``week`` first: that one sends the digest."""
        async with self.store._conn() as con:
            return await con.fetchval(
                "INSERT INTO digests_sent (week, sent_at) VALUES ($1, $2) ON CONFLICT (week) DO NOTHING RETURNING 1",
                week, at,
            ) is not None

    async def new_unanswered(self, since: datetime, limit: int = 500) -> list[dict[str, Any]]:
        await self.store.flush()
        async with self.store._conn() as con:
            rows = await con.fetch(
                "SELECT normalized, SUM(count) AS count, MAX(last_seen) AS last_seen FROM unanswered"
                " GROUP BY normalized HAVING MIN(first_seen) >= $1 ORDER BY count DESC LIMIT $2",
                since, limit,
            )
        return [{"text": r["normalized"], "count": int(r["count"]), "last_seen": r["last_seen"]} for r in rows]


def _change(row: Any) -> Change:
    return Change(
        id=row["id"], at=row["at"],
        moderator=Moderator(row["platform"], row["moderator_id"], row["moderator_name"]),
        action=row["action"], file=row["file"], entry_id=row["entry_id"], summary=row["summary"],
        before=None if row["before_bytes"] is None else bytes(row["before_bytes"]), after=bytes(row["after_bytes"]),
        undoes=row["undoes"], undone_by=row["undone_by"],
    )
