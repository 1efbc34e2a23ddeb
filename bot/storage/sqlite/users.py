"""The SQLite store's rows about people: users, triage progress, consent, the safety log, export and deletion."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.lru import LruCache
from bot.core.store import FINISHED_FOLLOWUP_STATES, ConsentRecord, StoredTriage, User
from bot.storage.common import HEALTH_TABLES, answers_from, answers_to, from_db, to_db
from bot.storage.sqlite.base import SQLITE_ERRORS
from bot.storage.sqlite.rows import fetch_all, fetch_one

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger(__name__)



class UserRows:
    """Part of the SQLite store: users, triage, consent, safety log, export and deletion."""

    path: str
    _lock: asyncio.Lock
    _user_cache: LruCache[tuple[str, str], User]
    _pending_unanswered: dict[tuple[str, int], tuple[int, str, str]]

    if TYPE_CHECKING:

        @property
        def db(self) -> aiosqlite.Connection: ...

        def _now(self) -> datetime: ...

        async def flush(self) -> None: ...

    # ----------------------------------------------------------------- users
    async def get_or_create_user(self, platform: str, platform_user_id: str) -> User:
        """The user's row, created when something about them must be stored."""
        key = (platform, platform_user_id)
        cached = self._user_cache.get(key)
        if cached is not None:
            return cached
        # a read first: while another process holds the write lock (WAL) a known user is still found at once
        known = await self.find_user(platform, platform_user_id)
        if known is not None:
            return known
        async with self._lock:
            row = await fetch_one(self.db, "INSERT INTO users (platform, platform_user_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (platform, platform_user_id) DO NOTHING RETURNING *",
                (platform, platform_user_id, to_db(self._now())))
        if row is not None:
            found: User | None = dataclasses.replace(_user(row), new=True)
        else:
            found = await self.find_user(platform, platform_user_id)
        if found is None:
            raise RuntimeError("user row vanished while it was being read")
        self._user_cache[key] = dataclasses.replace(found, new=False)
        return found

    async def find_user(self, platform: str, platform_user_id: str) -> User | None:
        """The user's row, or None: never creates one."""
        key = (platform, platform_user_id)
        cached = self._user_cache.get(key)
        if cached is not None:
            return cached
        row = await fetch_one(
            self.db, "SELECT * FROM users WHERE platform = ? AND platform_user_id = ?", (platform, platform_user_id)
        )
        if row is None:
            return None
        self._user_cache[key] = found = _user(row)
        return found

    async def user_by_id(self, user_id: int) -> User | None:
        row = await fetch_one(self.db, "SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def set_notice_shown(self, user: User) -> None:
        await self.db.execute("UPDATE users SET notice_shown = 1 WHERE id = ?", (user.id,))
        self._user_cache.pop((user.platform, user.platform_user_id), None)

    async def set_followups_enabled(self, user: User, enabled: bool) -> None:
        await self.db.execute("UPDATE users SET followups_enabled = ? WHERE id = ?", (int(enabled), user.id))
        self._user_cache.pop((user.platform, user.platform_user_id), None)

    # ----------------------------------------------------------------- triage
    async def get_triage(self, user: User) -> StoredTriage | None:
        row = await fetch_one(self.db, "SELECT * FROM triage_state WHERE user_id = ?", (user.id,))
        if row is None:
            return None
        return StoredTriage(row["flow_id"], row["step_id"], answers_from(row["answers"]), row["chat_id"])

    async def conversation(self, user: User) -> tuple[StoredTriage | None, int | None]:
        """In one round trip: the user's triage position and the id of a check-in awaiting their answer."""
        row = await fetch_one(self.db, "SELECT t.flow_id, t.step_id, t.answers, t.chat_id,"
            " (SELECT id FROM followups WHERE user_id = ? AND state = 'awaiting' ORDER BY id DESC LIMIT 1) AS fu"
            " FROM (SELECT 1) LEFT JOIN triage_state t ON t.user_id = ?",
            (user.id, user.id))
        if row is None:
            return None, None
        triage = None
        if row["flow_id"] is not None:
            triage = StoredTriage(row["flow_id"], row["step_id"], answers_from(row["answers"]), row["chat_id"])
        return triage, row["fu"]

    async def save_triage(self, user: User, state: StoredTriage) -> None:
        await self.db.execute(
            "INSERT INTO triage_state (user_id, flow_id, step_id, answers, chat_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET flow_id = excluded.flow_id,"
            " step_id = excluded.step_id, answers = excluded.answers, chat_id = excluded.chat_id,"
            " updated_at = excluded.updated_at",
            (user.id, state.flow_id, state.step_id, answers_to(state.answers), state.chat_id, to_db(self._now())),
        )

    async def clear_triage(self, user: User) -> bool:
        cur = await self.db.execute("DELETE FROM triage_state WHERE user_id = ?", (user.id,))
        return (cur.rowcount or 0) > 0

    # ----------------------------------------------------------------- consent (issue 16)
    async def consent_of(self, user: User) -> ConsentRecord | None:
        """The user's stored consent, or None (never asked, refused, or withdrawn). No row (id 0): none."""
        if not user.stored:
            return None
        row = await fetch_one(
            self.db, "SELECT version, text_hash, given_at FROM consents WHERE user_id = ?", (user.id,)
        )
        return ConsentRecord(row["version"], row["text_hash"], from_db(row["given_at"])) if row else None

    async def give_consent(self, user: User, version: str, text_hash: str) -> None:
        """Record (or renew, for a new version) the user's consent: user, platform, version, text hash and time."""
        await self.db.execute(
            "INSERT INTO consents (user_id, platform, version, text_hash, given_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET platform = excluded.platform, version = excluded.version,"
            " text_hash = excluded.text_hash, given_at = excluded.given_at",
            (user.id, user.platform, version, text_hash, to_db(self._now())),
        )

    async def withdraw_consent(self, user: User) -> dict[str, int]:
        """Delete the consent and every health row of the user (check progress, check-ins of any state, their
        safety log and unanswered questions), in one transaction; the user row itself stays. Returns how many rows
        went from each table."""
        for key in [key for key in self._pending_unanswered if key[1] == user.id]:
            del self._pending_unanswered[key]
        removed: dict[str, int] = {}
        async with self._lock:
            await self.db.execute("BEGIN")
            try:
                for table in (*HEALTH_TABLES, "consents"):
                    cur = await self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user.id,))
                    removed[table] = cur.rowcount or 0
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        return removed

    # ----------------------------------------------------------------- safety log, retention
    async def log_escalation(self, user: User | None, level: str, category: str) -> None:
        """Level, category and time, linked to ``user`` (None or no row: to nobody); never the message text."""
        await self.db.execute(
            "INSERT INTO escalations (user_id, level, category, created_at) VALUES (?, ?, ?, ?)",
            (user.id if user is not None and user.stored else None, level, category, to_db(self._now())),
        )

    async def purge_older_than(self, days: int) -> int:
        """Retention: drop unanswered questions and escalation rows older than ``days``."""
        cutoff = to_db(self._now() - timedelta(days=days))
        await self.flush()
        removed = 0
        try:
            async with self._lock:
                cur = await self.db.execute("DELETE FROM unanswered WHERE last_seen < ?", (cutoff,))
                removed += cur.rowcount or 0
                cur = await self.db.execute("DELETE FROM escalations WHERE created_at < ?", (cutoff,))
                removed += cur.rowcount or 0
        except SQLITE_ERRORS as exc:  # tried again at the next round
            log.warning("retention: could not remove old rows from %s: %s", self.path, exc)
        return removed

    async def purge_health(self, *, triage_days: int) -> int:
        """Retention for health rows (issue 16): answers of a check untouched for ``triage_days`` and finished
        check-ins. Best effort: a locked or full database is one warning line and the next round tries again."""
        cutoff = to_db(self._now() - timedelta(days=triage_days))
        marks = ",".join("?" * len(FINISHED_FOLLOWUP_STATES))
        try:
            async with self._lock:
                cur = await self.db.execute("DELETE FROM triage_state WHERE updated_at < ?", (cutoff,))
                removed = cur.rowcount or 0
                cur = await self.db.execute(
                    f"DELETE FROM followups WHERE state IN ({marks})", FINISHED_FOLLOWUP_STATES
                )
                return removed + (cur.rowcount or 0)
        except SQLITE_ERRORS as exc:
            log.warning("retention: could not remove old check answers or finished check-ins: %s", exc)
            return 0

    # ----------------------------------------------------------------- the runner's own data
    async def export_user(self, user: User) -> dict[str, Any]:
        """Everything stored about one user, as plain JSON-able data."""
        fresh = await self.user_by_id(user.id) or user
        out: dict[str, Any] = {
            "user": {
                "platform": fresh.platform,
                "platform_user_id": fresh.platform_user_id,
                "first_seen": to_db(fresh.created_at),
                "notice_shown": fresh.notice_shown,
                "followups_enabled": fresh.followups_enabled,
            }
        }
        triage = await self.get_triage(fresh)
        out["triage"] = asdict(triage) if triage else None
        if triage is not None:
            out["triage"]["answers"] = [list(a) for a in triage.answers]
            row = await fetch_one(self.db, "SELECT updated_at FROM triage_state WHERE user_id = ?", (fresh.id,))
            out["triage"]["updated_at"] = row["updated_at"] if row else None
        rows = await fetch_all(
            self.db, "SELECT level, category, created_at FROM escalations WHERE user_id = ? ORDER BY id", (fresh.id,)
        )
        out["escalations"] = [dict(r) for r in rows]
        rows = await fetch_all(self.db, "SELECT * FROM followups WHERE user_id = ? ORDER BY id", (fresh.id,))
        out["followups"] = [{k: r[k] for k in r.keys() if k not in ("id", "user_id")} for r in rows]
        await self.flush()
        rows = await fetch_all(
            self.db,
            "SELECT normalized, count, first_seen, last_seen FROM unanswered WHERE user_id = ? ORDER BY first_seen",
            (fresh.id,),
        )
        out["unanswered"] = [
            {"question": r["normalized"], "count": r["count"], "first_seen": r["first_seen"],
             "last_seen": r["last_seen"]}
            for r in rows
        ]
        record = await self.consent_of(fresh)
        out["consent"] = (
            {"version": record.version, "text_sha256": record.text_hash, "given_at": to_db(record.given_at)}
            if record else None
        )
        return out

    async def forget_user(self, user: User) -> None:
        """Delete every row about the user in every table, their unanswered questions included."""
        for key in [key for key in self._pending_unanswered if key[1] == user.id]:
            del self._pending_unanswered[key]
        async with self._lock:
            await self.db.execute("BEGIN")
            try:
                for table in (*HEALTH_TABLES, "consents"):
                    await self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user.id,))
                await self.db.execute("DELETE FROM users WHERE id = ?", (user.id,))
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        self._user_cache.pop((user.platform, user.platform_user_id), None)


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        platform=row["platform"],
        platform_user_id=row["platform_user_id"],
        created_at=from_db(row["created_at"]),
        notice_shown=bool(row["notice_shown"]),
        followups_enabled=bool(row["followups_enabled"]),
    )
