"""The SQLite store's check-ins: scheduling, the user's series, and claiming due rows exactly once across processes.

``claim_due`` is one conditional ``UPDATE ... RETURNING`` (one statement, so one atomic write): a row goes from
``pending`` (due) to ``sending`` with this process as ``lease_owner`` until ``lease_until``; a row already ``sending``
is taken over only once its lease expired (or, on the same host, once its owner process is gone: a restarted bot does
not wait out the lease of the process that was killed). SQLite serialises writers, so two processes never get the same
row. Each send has a ``send_key`` (``fu:<id>:<check-in number>``); ``complete_claim`` records it in ``sent_keys``
before it moves the row on, and a key found there is never sent again. What is left: a process killed after the
platform accepted the message and before ``complete_claim`` committed; that check-in is sent once more.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.store import ACTIVE_FOLLOWUP_STATES, Claim, Followup, User
from bot.storage.common import RELEASABLE, UPDATABLE, checked_fields, from_db, owner_gone, to_db
from bot.storage.sqlite.rows import fetch_all, fetch_one

if TYPE_CHECKING:
    import aiosqlite

_FOLLOWUP_SELECT = (
    "SELECT f.*, u.platform_user_id AS platform_user_id FROM followups f JOIN users u ON u.id = f.user_id"
)
_CLAIMABLE = (
    "((state = 'pending' AND due_at <= :now)"
    " OR (state = 'sending' AND (lease_until IS NULL OR lease_until < :now)))"
)
class FollowupRows:
    """Part of the SQLite store: the follow-ups table and its claims."""

    _lock: asyncio.Lock

    if TYPE_CHECKING:

        @property
        def db(self) -> aiosqlite.Connection: ...

        def _now(self) -> datetime: ...

    async def _statement(self, sql: str, params: Any) -> list[Any]:
        """One statement with its rows in one call to the database thread: its implicit transaction (and SQLite's
        write lock) never outlives the call, and the write lock keeps it out of a transaction in progress."""
        async with self._lock:
            return list(await self.db.execute_fetchall(sql, params))

    # ----------------------------------------------------------------- the series
    async def add_followup(self, user: User, chat_id: str, topic: str, due: datetime) -> int:
        """Schedule a check-in series; an active series for the same user is replaced."""
        now = to_db(self._now())
        async with self._lock:
            await self.db.execute("BEGIN")
            try:
                await self.db.execute(
                    "UPDATE followups SET state = 'cancelled', updated_at = ? WHERE user_id = ? AND state IN"
                    " ('pending', 'sending', 'awaiting')",
                    (now, user.id),
                )
                cur = await self.db.execute(
                    "INSERT INTO followups (user_id, platform, chat_id, topic, due_at, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (user.id, user.platform, chat_id, topic, to_db(due), now, now),
                )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        return int(cur.lastrowid or 0)

    async def next_due(self) -> datetime | None:
        """The earliest due time of a check-in that still has to be sent."""
        row = await fetch_one(self.db, "SELECT MIN(due_at) FROM followups WHERE state IN ('pending', 'sending')")
        return from_db(row[0]) if row and row[0] else None

    async def due_followups(self, now: datetime, limit: int = 100) -> list[Followup]:
        rows = await fetch_all(
            self.db,
            _FOLLOWUP_SELECT + " WHERE f.state IN ('pending', 'sending') AND f.due_at <= ? ORDER BY f.due_at LIMIT ?",
            (to_db(now), limit),
        )
        return [_followup(r) for r in rows]

    async def get_followup(self, followup_id: int) -> Followup | None:
        row = await fetch_one(self.db, _FOLLOWUP_SELECT + " WHERE f.id = ?", (followup_id,))
        return _followup(row) if row else None

    async def user_followups(self, user: User, *, active_only: bool = False) -> list[Followup]:
        query = _FOLLOWUP_SELECT + " WHERE f.user_id = ?"
        if active_only:
            query += " AND f.state IN ('pending', 'sending', 'awaiting')"
        rows = await fetch_all(self.db, query + " ORDER BY f.id", (user.id,))
        return [_followup(r) for r in rows]

    async def list_followups(self, states: tuple[str, ...] = ACTIVE_FOLLOWUP_STATES) -> list[Followup]:
        marks = ",".join("?" * len(states))
        rows = await fetch_all(self.db, _FOLLOWUP_SELECT + f" WHERE f.state IN ({marks}) ORDER BY f.due_at", states)
        return [_followup(r) for r in rows]

    async def update_followup(self, followup_id: int, *, expect_state: str | None = None, **fields: Any) -> bool:
        """Set columns of one follow-up (state, due_at, checkins, same_count, attempts, last_error).

        With ``expect_state`` the row changes only while it is still in that state (a check-in cancelled during a
        send stays cancelled). Returns whether a row changed.
        """
        checked_fields(fields, UPDATABLE)
        values = [to_db(v) if isinstance(v, datetime) else v for v in fields.values()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        query = f"UPDATE followups SET {assignments}, updated_at = ? WHERE id = ?"
        params: tuple[Any, ...] = (*values, to_db(self._now()), followup_id)
        if expect_state is not None:
            query += " AND state = ?"
            params = (*params, expect_state)
        async with self._lock:
            cur = await self.db.execute(query, params)
        return (cur.rowcount or 0) > 0

    async def cancel_followups(self, user: User) -> int:
        async with self._lock:
            cur = await self.db.execute(
                "UPDATE followups SET state = 'cancelled', updated_at = ? WHERE user_id = ? AND state IN"
                " ('pending', 'sending', 'awaiting')",
                (to_db(self._now()), user.id),
            )
        return cur.rowcount or 0

    # ----------------------------------------------------------------- claims
    async def claim_due(
        self, owner: str, now: datetime, lease: timedelta, *, platforms: set[str], limit: int = 20
    ) -> list[Claim]:
        """Claim up to ``limit`` due check-ins of ``platforms`` for ``owner`` until ``now + lease``."""
        if not platforms:
            return []
        await self._expire_dead_owners(now)
        marks = ",".join(f":p{i}" for i in range(len(platforms)))
        params: dict[str, Any] = {
            "now": to_db(now), "owner": owner, "until": to_db(now + lease), "limit": limit,
            **{f"p{i}": p for i, p in enumerate(sorted(platforms))},
        }
        update = (
            "UPDATE followups SET state = 'sending', lease_owner = :owner, lease_until = :until, updated_at = :now,"
            " send_key = 'fu:' || id || ':' || (checkins + 1)"
            f" WHERE id IN (SELECT id FROM followups WHERE {_CLAIMABLE} AND platform IN ({marks})"
            "  ORDER BY due_at LIMIT :limit)"
            f" AND {_CLAIMABLE} RETURNING id"
        )
        ids = [int(r[0]) for r in await self._statement(update, params)]
        if not ids:
            return []
        id_marks = ",".join("?" * len(ids))
        found = await fetch_all(self.db, f"{_FOLLOWUP_SELECT} WHERE f.id IN ({id_marks}) ORDER BY f.due_at", ids)
        return [Claim(_followup(r), str(r["send_key"])) for r in found]

    async def _expire_dead_owners(self, now: datetime) -> None:
        rows = await fetch_all(
            self.db,
            "SELECT DISTINCT lease_owner FROM followups WHERE state = 'sending' AND lease_until >= ?",
            (to_db(now),),
        )
        owners = [r[0] for r in rows if r[0]]
        gone = [o for o in owners if owner_gone(o)]
        if gone:
            marks = ",".join("?" * len(gone))
            await self._statement(
                f"UPDATE followups SET lease_until = NULL WHERE state = 'sending' AND lease_owner IN ({marks})", gone
            )

    async def claim_held(self, claim: Claim, owner: str) -> bool:
        """Whether ``owner`` still holds the row (not cancelled, answered or taken over since the claim)."""
        row = await fetch_one(
            self.db,
            "SELECT 1 FROM followups WHERE id = ? AND state = 'sending' AND lease_owner = ?",
            (claim.followup.id, owner),
        )
        return row is not None

    async def already_sent(self, send_key: str) -> bool:
        return await fetch_one(self.db, "SELECT 1 FROM sent_keys WHERE key = ?", (send_key,)) is not None

    async def complete_claim(self, claim: Claim, owner: str, now: datetime) -> bool:
        """The check-in was delivered: record its key and move the row to ``awaiting`` (only while we hold it)."""
        # the key first: a crash between the two leaves the row claimed, and whoever takes it over finds the key and
        # records the delivery without sending again
        await self._statement(
            "INSERT OR IGNORE INTO sent_keys (key, sent_at) VALUES (?, ?)", (claim.send_key, to_db(now))
        )
        rows = await self._statement(
            "UPDATE followups SET state = 'awaiting', checkins = checkins + 1, attempts = 0, last_error = NULL,"
            " lease_owner = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'sending' AND lease_owner = ? RETURNING id",
            (to_db(now), claim.followup.id, owner),
        )
        return bool(rows)

    async def release_claim(self, claim: Claim, owner: str, now: datetime, **fields: Any) -> bool:
        """Give a claimed row back (``state`` and other columns in ``fields``), only while we hold it."""
        if fields:
            checked_fields(fields, RELEASABLE)
        values = [to_db(v) if isinstance(v, datetime) else v for v in fields.values()]
        sets = "".join(f"{name} = ?, " for name in fields)
        sql = (
            f"UPDATE followups SET {sets}lease_owner = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'sending' AND lease_owner = ? RETURNING id"
        )
        return bool(await self._statement(sql, (*values, to_db(now), claim.followup.id, owner)))

    async def next_claimable(self, platforms: set[str]) -> datetime | None:
        """When the next claim can succeed: the earliest pending due time or lease expiry among ``platforms``."""
        if not platforms:
            return None
        marks = ",".join("?" * len(platforms))
        row = await fetch_one(
            self.db,
            "SELECT MIN(CASE WHEN state = 'pending' THEN due_at ELSE COALESCE(lease_until, due_at) END)"
            f" FROM followups WHERE state IN ('pending', 'sending') AND platform IN ({marks})",
            sorted(platforms),
        )
        return from_db(row[0]) if row and row[0] else None

    async def purge_sent_keys(self, before: datetime) -> int:
        async with self._lock:
            cur = await self.db.execute("DELETE FROM sent_keys WHERE sent_at < ?", (to_db(before),))
        return cur.rowcount or 0


def _followup(row: Any) -> Followup:
    return Followup(
        id=row["id"], user_id=row["user_id"], platform=row["platform"], platform_user_id=row["platform_user_id"],
        chat_id=row["chat_id"], topic=row["topic"], due_at=from_db(row["due_at"]), checkins=row["checkins"],
        same_count=row["same_count"], attempts=row["attempts"], state=row["state"], last_error=row["last_error"],
    )
