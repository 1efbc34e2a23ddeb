"""The PostgreSQL store's rows about people: users, triage progress, consent, the safety log, export and deletion."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.store import FINISHED_FOLLOWUP_STATES, ConsentRecord, StoredTriage, User
from bot.storage.common import HEALTH_TABLES, answers_from, answers_to, to_db
from bot.storage.postgres.base import PG_ERRORS

if TYPE_CHECKING:
    from bot.storage.postgres.base import PostgresBase

log = logging.getLogger(__name__)


class PgUserRows:
    """Part of the PostgreSQL store: users, triage, consent, safety log, export and deletion. No user cache: another
    process may change or delete a row at any time, and a read is one short round trip."""

    _pending_unanswered: dict[tuple[str, int], tuple[int, str, str]]

    if TYPE_CHECKING:
        _conn = PostgresBase._conn
        transaction = PostgresBase.transaction
        _now = PostgresBase._now
        describe = PostgresBase.describe

        async def flush(self) -> None: ...

    # ----------------------------------------------------------------- users
    async def get_or_create_user(self, platform: str, platform_user_id: str) -> User:
        async with self._conn() as con:
            row = await con.fetchrow(
                "INSERT INTO users (platform, platform_user_id, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (platform, platform_user_id) DO NOTHING RETURNING *",
                platform, platform_user_id, self._now(),
            )
            if row is not None:
                return _user(row, new=True)
            row = await con.fetchrow(
                "SELECT * FROM users WHERE platform = $1 AND platform_user_id = $2", platform, platform_user_id
            )
        if row is None:
            raise RuntimeError("user row vanished while it was being read")
        return _user(row)

    async def find_user(self, platform: str, platform_user_id: str) -> User | None:
        async with self._conn() as con:
            row = await con.fetchrow(
                "SELECT * FROM users WHERE platform = $1 AND platform_user_id = $2", platform, platform_user_id
            )
        return _user(row) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        async with self._conn() as con:
            row = await con.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def set_notice_shown(self, user: User) -> None:
        async with self._conn() as con:
            await con.execute("UPDATE users SET notice_shown = TRUE WHERE id = $1", user.id)

    async def set_followups_enabled(self, user: User, enabled: bool) -> None:
        async with self._conn() as con:
            await con.execute("UPDATE users SET followups_enabled = $2 WHERE id = $1", user.id, enabled)

    # ----------------------------------------------------------------- triage
    async def get_triage(self, user: User) -> StoredTriage | None:
        async with self._conn() as con:
            row = await con.fetchrow("SELECT * FROM triage_state WHERE user_id = $1", user.id)
        if row is None:
            return None
        return StoredTriage(row["flow_id"], row["step_id"], answers_from(row["answers"]), row["chat_id"])

    async def conversation(self, user: User) -> tuple[StoredTriage | None, int | None]:
        async with self._conn() as con:
            row = await con.fetchrow(
                "SELECT t.flow_id, t.step_id, t.answers, t.chat_id,"
                " (SELECT id FROM followups WHERE user_id = $1 AND state = 'awaiting' ORDER BY id DESC LIMIT 1) AS fu"
                " FROM (SELECT 1) AS one LEFT JOIN triage_state t ON t.user_id = $1",
                user.id,
            )
        if row is None:
            return None, None
        triage = None
        if row["flow_id"] is not None:
            triage = StoredTriage(row["flow_id"], row["step_id"], answers_from(row["answers"]), row["chat_id"])
        return triage, row["fu"]

    async def save_triage(self, user: User, state: StoredTriage) -> None:
        async with self._conn() as con:
            await con.execute(
                "INSERT INTO triage_state (user_id, flow_id, step_id, answers, chat_id, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET flow_id = excluded.flow_id,"
                " step_id = excluded.step_id, answers = excluded.answers, chat_id = excluded.chat_id,"
                " updated_at = excluded.updated_at",
                user.id, state.flow_id, state.step_id, answers_to(state.answers), state.chat_id, self._now(),
            )

    async def clear_triage(self, user: User) -> bool:
        async with self._conn() as con:
            status = await con.execute("DELETE FROM triage_state WHERE user_id = $1", user.id)
        return _count(status) > 0

    # ----------------------------------------------------------------- consent
    async def consent_of(self, user: User) -> ConsentRecord | None:
        if not user.stored:
            return None
        async with self._conn() as con:
            row = await con.fetchrow("SELECT version, text_hash, given_at FROM consents WHERE user_id = $1", user.id)
        return ConsentRecord(row["version"], row["text_hash"], row["given_at"]) if row else None

    async def give_consent(self, user: User, version: str, text_hash: str) -> None:
        async with self._conn() as con:
            await con.execute(
                "INSERT INTO consents (user_id, platform, version, text_hash, given_at) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (user_id) DO UPDATE SET platform = excluded.platform, version = excluded.version,"
                " text_hash = excluded.text_hash, given_at = excluded.given_at",
                user.id, user.platform, version, text_hash, self._now(),
            )

    async def withdraw_consent(self, user: User) -> dict[str, int]:
        for key in [key for key in self._pending_unanswered if key[1] == user.id]:
            del self._pending_unanswered[key]
        removed: dict[str, int] = {}
        async with self.transaction() as con:
            for table in (*HEALTH_TABLES, "consents"):
                removed[table] = _count(await con.execute(f"DELETE FROM {table} WHERE user_id = $1", user.id))
        return removed

    # ----------------------------------------------------------------- safety log, retention
    async def log_escalation(self, user: User | None, level: str, category: str) -> None:
        async with self._conn() as con:
            await con.execute(
                "INSERT INTO escalations (user_id, level, category, created_at) VALUES ($1, $2, $3, $4)",
                user.id if user is not None and user.stored else None, level, category, self._now(),
            )

    async def purge_older_than(self, days: int) -> int:
        cutoff = self._now() - timedelta(days=days)
        await self.flush()
        try:
            async with self._conn() as con:
                removed = _count(await con.execute("DELETE FROM unanswered WHERE last_seen < $1", cutoff))
                return removed + _count(await con.execute("DELETE FROM escalations WHERE created_at < $1", cutoff))
        except PG_ERRORS as exc:  # tried again at the next round
            log.warning("retention: could not remove old rows from the %s: %s", self.describe(), exc)
            return 0

    async def purge_health(self, *, triage_days: int) -> int:
        cutoff = self._now() - timedelta(days=triage_days)
        try:
            async with self._conn() as con:
                removed = _count(await con.execute("DELETE FROM triage_state WHERE updated_at < $1", cutoff))
                return removed + _count(await con.execute(
                    "DELETE FROM followups WHERE state = ANY($1::text[])", list(FINISHED_FOLLOWUP_STATES)
                ))
        except PG_ERRORS as exc:
            log.warning("retention: could not remove old check answers or finished check-ins: %s", exc)
            return 0

    # ----------------------------------------------------------------- the runner's own data
    async def export_user(self, user: User) -> dict[str, Any]:
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
        await self.flush()
        async with self._conn() as con:
            row = await con.fetchrow("SELECT * FROM triage_state WHERE user_id = $1", fresh.id)
            if row is not None:
                triage = StoredTriage(row["flow_id"], row["step_id"], answers_from(row["answers"]), row["chat_id"])
                out["triage"] = {**asdict(triage), "answers": [list(a) for a in triage.answers],
                                 "updated_at": to_db(row["updated_at"])}
            else:
                out["triage"] = None
            rows = await con.fetch(
                "SELECT level, category, created_at FROM escalations WHERE user_id = $1 ORDER BY id", fresh.id
            )
            out["escalations"] = [_plain(r) for r in rows]
            rows = await con.fetch("SELECT * FROM followups WHERE user_id = $1 ORDER BY id", fresh.id)
            out["followups"] = [
                {k: v for k, v in _plain(r).items() if k not in ("id", "user_id")} for r in rows
            ]
            rows = await con.fetch(
                "SELECT normalized, count, first_seen, last_seen FROM unanswered WHERE user_id = $1"
                " ORDER BY first_seen", fresh.id,
            )
            out["unanswered"] = [
                {"question": r["normalized"], "count": r["count"], "first_seen": to_db(r["first_seen"]),
                 "last_seen": to_db(r["last_seen"])}
                for r in rows
            ]
        record = await self.consent_of(fresh)
        out["consent"] = (
            {"version": record.version, "text_sha256": record.text_hash, "given_at": to_db(record.given_at)}
            if record else None
        )
        return out

    async def forget_user(self, user: User) -> None:
        for key in [key for key in self._pending_unanswered if key[1] == user.id]:
            del self._pending_unanswered[key]
        async with self.transaction() as con:
            for table in (*HEALTH_TABLES, "consents"):
                await con.execute(f"DELETE FROM {table} WHERE user_id = $1", user.id)
            await con.execute("DELETE FROM users WHERE id = $1", user.id)


def _count(status: str) -> int:
    """Rows a DELETE or UPDATE touched, from asyncpg's status text ("DELETE 3")."""
    with contextlib.suppress(ValueError, IndexError):
        return int(status.rsplit(" ", 1)[1])
    return 0


def _plain(row: Any) -> dict[str, Any]:
    """A row as JSON-able values: times as the stores' UTC text, as in the SQLite export."""
    return {k: to_db(v) if isinstance(v, datetime) else v for k, v in dict(row).items()}


def _user(row: Any, *, new: bool = False) -> User:
    return User(
        id=row["id"], platform=row["platform"], platform_user_id=row["platform_user_id"],
        created_at=row["created_at"], notice_shown=row["notice_shown"],
        followups_enabled=row["followups_enabled"], new=new,
    )
