"""The moderators' log on SQLite (migration 0005): FAQ changes made from the chat with the file before and after,
questions marked "not for the bot", the weekly digests sent, and the new unanswered questions the digest lists.

Implements ``bot.core.faq_editing.ModerationLog`` over the Store's connection and write lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.faq_editing import Change, Moderator, NewChange
from bot.storage.common import from_db, to_db, translate_errors
from bot.storage.sqlite.base import SQLITE_ERRORS
from bot.storage.sqlite.rows import fetch_all, fetch_one
from bot.storage.sqlite.store import SQLiteStore


@translate_errors(SQLITE_ERRORS)
class SqliteModerationLog:
    """``ModerationLog`` on the runbot database."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def record_change(self, change: NewChange) -> int:
        """Store one change; an undo also marks the change it reverted, in the same transaction."""
        store = self.store
        async with store._lock:
            await store.db.execute("BEGIN")
            try:
                cur = await store.db.execute(
                    "INSERT INTO faq_changes (at, platform, moderator_id, moderator_name, action, file, entry_id,"
                    " summary, before_bytes, after_bytes, undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (to_db(change.at), change.moderator.platform, change.moderator.user_id, change.moderator.name,
                     change.action, change.file, change.entry_id, change.summary, change.before, change.after,
                     change.undoes),
                )
                new_id = int(cur.lastrowid or 0)
                if change.undoes is not None:
                    await store.db.execute(
                        "UPDATE faq_changes SET undone_by = ? WHERE id = ?", (new_id, change.undoes)
                    )
                await store.db.execute("COMMIT")
            except BaseException:
                await store.db.execute("ROLLBACK")
                raise
        return new_id

    async def changes(self, entry_id: str | None = None, limit: int = 10) -> list[Change]:
        query = "SELECT * FROM faq_changes"
        params: tuple[Any, ...] = ()
        if entry_id is not None:
            query += " WHERE entry_id = ?"
            params = (entry_id,)
        rows = await fetch_all(self.store.db, query + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_change(r) for r in rows]

    async def change(self, change_id: int) -> Change | None:
        row = await fetch_one(self.store.db, "SELECT * FROM faq_changes WHERE id = ?", (change_id,))
        return _change(row) if row else None

    async def last_undoable(self, moderator: Moderator) -> Change | None:
        """The moderator's latest change that is not an undo and was not undone."""
        row = await fetch_one(
            self.store.db,
            "SELECT * FROM faq_changes WHERE platform = ? AND moderator_id = ? AND undoes IS NULL"
            " AND undone_by IS NULL ORDER BY id DESC LIMIT 1",
            (moderator.platform, moderator.user_id),
        )
        return _change(row) if row else None

    async def later_change(self, file: str, after_id: int) -> Change | None:
        """The first change to ``file`` made after change ``after_id`` that still stands (not undone, not an undo):
        it is in the way of undoing that one."""
        row = await fetch_one(
            self.store.db,
            "SELECT * FROM faq_changes WHERE file = ? AND id > ? AND undone_by IS NULL AND undoes IS NULL"
            " ORDER BY id LIMIT 1",
            (file, after_id),
        )
        return _change(row) if row else None

    async def ignore(self, question: str, at: datetime) -> None:
        await self.store.db.execute(
            "INSERT INTO faq_ignored (question, at) VALUES (?, ?) ON CONFLICT (question) DO NOTHING",
            (question, to_db(at)),
        )

    async def ignored(self) -> list[str]:
        return [r["question"] for r in await fetch_all(self.store.db, "SELECT question FROM faq_ignored ORDER BY at")]

    async def claim_digest(self, week: str, at: datetime) -> bool:
        """True for the one caller (in any process) that records ``week`` first: that one sends the digest."""
        async with self.store._lock:
            cur = await self.store.db.execute(
                "INSERT INTO digests_sent (week, sent_at) VALUES (?, ?) ON CONFLICT (week) DO NOTHING",
                (week, to_db(at)),
            )
        return (cur.rowcount or 0) > 0

    async def new_unanswered(self, since: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Unanswered questions first asked since ``since`` (text, count, last seen; no user ids)."""
        await self.store.flush()
        rows = await fetch_all(
            self.store.db,
            "SELECT normalized, SUM(count) AS count, MAX(last_seen) AS last_seen FROM unanswered"
            " GROUP BY normalized HAVING MIN(first_seen) >= ? ORDER BY count DESC LIMIT ?",
            (to_db(since), limit),
        )
        return [{"text": r["normalized"], "count": r["count"], "last_seen": from_db(r["last_seen"])} for r in rows]


def _change(row: Any) -> Change:
    return Change(
        id=row["id"], at=from_db(row["at"]),
        moderator=Moderator(row["platform"], row["moderator_id"], row["moderator_name"]),
        action=row["action"], file=row["file"], entry_id=row["entry_id"], summary=row["summary"],
        before=None if row["before_bytes"] is None else bytes(row["before_bytes"]), after=bytes(row["after_bytes"]),
        undoes=row["undoes"], undone_by=row["undone_by"],
    )
