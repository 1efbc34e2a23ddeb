"""The PostgreSQL store's check-ins, and claiming due ones exactly once across any number of processes.

``claim_due`` picks due rows with ``FOR UPDATE SKIP LOCKED`` (a row another process is claiming right now is skipped,
not waited for) and marks them ``sending`` with this scheduler as ``lease_owner`` until ``lease_until``, in one
statement. A row whose lease passed (its process died or hung) is claimable again. ``complete_claim`` records the
send key and moves the row on in one transaction, only while the lease is still ours; a key found in ``sent_keys`` is
never sent again. What is left: a process killed after the platform accepted the message and before that commit;
that check-in is sent once more after the lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.store import ACTIVE_FOLLOWUP_STATES, Claim, Followup, User
from bot.storage.common import RELEASABLE, UPDATABLE, checked_fields, owner_gone
from bot.storage.postgres.users import _count

if TYPE_CHECKING:
    from bot.storage.postgres.base import PostgresBase

_SELECT = (
    "SELECT f.*, u.platform_user_id AS platform_user_id FROM followups f JOIN users u ON u.id = f.user_id"
)
_CLAIMABLE = (
    "((f.state = 'pending' AND f.due_at <= $1)"
    " OR (f.state = 'sending' AND (f.lease_until IS NULL OR f.lease_until < $1)))"
)
_ACTIVE = "('pending', 'sending', 'awaiting')"


class PgFollowupRows:
    """Part of the PostgreSQL store: the follow-ups table and its claims."""

    if TYPE_CHECKING:
        _conn = PostgresBase._conn
        transaction = PostgresBase.transaction
        _now = PostgresBase._now

    async def add_followup(self, user: User, chat_id: str, topic: str, due: datetime) -> int:
        """Schedule a check-in series; an active series for the same user is replaced."""
        now = self._now()
        async with self.transaction() as con:
            await con.execute(
                f"UPDATE followups SET state = 'cancelled', updated_at = $1 WHERE user_id = $2 AND state IN {_ACTIVE}",
                now, user.id,
            )
            return int(await con.fetchval(
                "INSERT INTO followups (user_id, platform, chat_id, topic, due_at, state, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING id",
                user.id, user.platform, chat_id, topic, _aware(due), now,
            ))

    async def next_due(self) -> datetime | None:
        async with self._conn() as con:
            return await con.fetchval("SELECT MIN(due_at) FROM followups WHERE state IN ('pending', 'sending')")

    async def get_followup(self, followup_id: int) -> Followup | None:
        async with self._conn() as con:
            row = await con.fetchrow(_SELECT + " WHERE f.id = $1", followup_id)
        return _followup(row) if row else None

    async def user_followups(self, user: User, *, active_only: bool = False) -> list[Followup]:
        query = _SELECT + " WHERE f.user_id = $1" + (f" AND f.state IN {_ACTIVE}" if active_only else "")
        async with self._conn() as con:
            return [_followup(r) for r in await con.fetch(query + " ORDER BY f.id", user.id)]

    async def list_followups(self, states: tuple[str, ...] = ACTIVE_FOLLOWUP_STATES) -> list[Followup]:
        async with self._conn() as con:
            rows = await con.fetch(_SELECT + " WHERE f.state = ANY($1::text[]) ORDER BY f.due_at", list(states))
        return [_followup(r) for r in rows]

    async def update_followup(self, followup_id: int, *, expect_state: str | None = None, **fields: Any) -> bool:
        checked_fields(fields, UPDATABLE)
        names = list(fields)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=3))
        query = f"UPDATE followups SET {assignments}, updated_at = $2 WHERE id = $1"
        params: list[Any] = [followup_id, self._now(), *(_aware(fields[n]) for n in names)]
        if expect_state is not None:
            query += f" AND state = ${len(params) + 1}"
            params.append(expect_state)
        async with self._conn() as con:
            return _count(await con.execute(query, *params)) > 0

    async def cancel_followups(self, user: User) -> int:
        async with self._conn() as con:
            return _count(await con.execute(
                f"UPDATE followups SET state = 'cancelled', updated_at = $1 WHERE user_id = $2 AND state IN {_ACTIVE}",
                self._now(), user.id,
            ))

    # ----------------------------------------------------------------- claims
    async def claim_due(
        self, owner: str, now: datetime, lease: timedelta, *, platforms: set[str], limit: int = 20
    ) -> list[Claim]:
        if not platforms:
            return []
        await self._expire_dead_owners(now)
        async with self._conn() as con:
            rows = await con.fetch(
                "WITH due AS (SELECT f.id FROM followups f"
                f" WHERE {_CLAIMABLE} AND f.platform = ANY($4::text[])"
                " ORDER BY f.due_at LIMIT $5 FOR UPDATE SKIP LOCKED)"
                " UPDATE followups f SET state = 'sending', lease_owner = $2, lease_until = $3, updated_at = $1,"
                " send_key = 'fu:' || f.id || ':' || (f.checkins + 1)"
                " FROM due, users u WHERE f.id = due.id AND u.id = f.user_id"
                " RETURNING f.*, u.platform_user_id AS platform_user_id",
                now, owner, now + lease, sorted(platforms), limit,
            )
        rows = sorted(rows, key=lambda r: (r["due_at"], r["id"]))
        return [Claim(_followup(r), str(r["send_key"])) for r in rows]

    async def _expire_dead_owners(self, now: datetime) -> None:
        """A lease held by a process on this machine that is gone ends now (a restarted bot does not wait it out)."""
        async with self._conn() as con:
            owners = await con.fetch(
                "SELECT DISTINCT lease_owner FROM followups WHERE state = 'sending' AND lease_until >= $1", now
            )
            gone = [r[0] for r in owners if r[0] and owner_gone(r[0])]
            if gone:
                await con.execute(
                    "UPDATE followups SET lease_until = NULL WHERE state = 'sending' AND lease_owner = ANY($1::text[])",
                    gone,
                )

    async def claim_held(self, claim: Claim, owner: str) -> bool:
        async with self._conn() as con:
            return await con.fetchval(
                "SELECT 1 FROM followups WHERE id = $1 AND state = 'sending' AND lease_owner = $2",
                claim.followup.id, owner,
            ) is not None

    async def already_sent(self, send_key: str) -> bool:
        async with self._conn() as con:
            return await con.fetchval("SELECT 1 FROM sent_keys WHERE key = $1", send_key) is not None

    async def complete_claim(self, claim: Claim, owner: str, now: datetime) -> bool:
        """The check-in was delivered: its key and the row's move to ``awaiting`` in one transaction."""
        async with self.transaction() as con:
            await con.execute(
                "INSERT INTO sent_keys (key, sent_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                claim.send_key, now,
            )
            return await con.fetchval(
                "UPDATE followups SET state = 'awaiting', checkins = checkins + 1, attempts = 0, last_error = NULL,"
                " lease_owner = NULL, lease_until = NULL, updated_at = $1"
                " WHERE id = $2 AND state = 'sending' AND lease_owner = $3 RETURNING id",
                now, claim.followup.id, owner,
            ) is not None

    async def release_claim(self, claim: Claim, owner: str, now: datetime, **fields: Any) -> bool:
        if fields:
            checked_fields(fields, RELEASABLE)
        names = list(fields)
        sets = "".join(f"{name} = ${i}, " for i, name in enumerate(names, start=4))
        async with self._conn() as con:
            return await con.fetchval(
                f"UPDATE followups SET {sets}lease_owner = NULL, lease_until = NULL, updated_at = $1"
                " WHERE id = $2 AND state = 'sending' AND lease_owner = $3 RETURNING id",
                now, claim.followup.id, owner, *(_aware(fields[n]) for n in names),
            ) is not None

    async def next_claimable(self, platforms: set[str]) -> datetime | None:
        if not platforms:
            return None
        async with self._conn() as con:
            return await con.fetchval(
                "SELECT MIN(CASE WHEN state = 'pending' THEN due_at ELSE COALESCE(lease_until, due_at) END)"
                " FROM followups WHERE state IN ('pending', 'sending') AND platform = ANY($1::text[])",
                sorted(platforms),
            )

    async def purge_sent_keys(self, before: datetime) -> int:
        async with self._conn() as con:
            return _count(await con.execute("DELETE FROM sent_keys WHERE sent_at < $1", before))


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise TypeError("naive datetime: the store only takes timezone-aware times")
    return value


def _followup(row: Any) -> Followup:
    return Followup(
        id=row["id"], user_id=row["user_id"], platform=row["platform"], platform_user_id=row["platform_user_id"],
        chat_id=row["chat_id"], topic=row["topic"], due_at=row["due_at"], checkins=row["checkins"],
        same_count=row["same_count"], attempts=row["attempts"], state=row["state"], last_error=row["last_error"],
    )
