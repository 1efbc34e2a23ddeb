"""Claiming due follow-ups exactly once across processes: leases and idempotency keys (migration 0002).

``claim_due`` is one conditional ``UPDATE ... RETURNING`` (one statement, so one atomic write): a row goes from
``pending`` (due) to ``sending`` with this process as ``lease_owner`` until ``lease_until``; a row already ``sending``
is taken over only once its lease expired (or, on the same host, once its owner process is gone: a restarted bot does
not wait out the lease of the process that was killed). SQLite serialises writers, so two processes never get the same
row. Each send has a ``send_key`` (``fu:<id>:<check-in number>``); ``complete`` records it in ``sent_keys`` before it
moves the row on, and a key found there is never sent again. What is left: a process killed after the platform
accepted the message and before ``complete`` committed; that check-in is sent once more.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.storage.sqlite import Followup, Store, from_db, to_db

_SELECT = (
    "SELECT f.id, f.user_id, f.platform, u.platform_user_id, f.chat_id, f.topic, f.due_at, f.checkins,"
    " f.same_count, f.attempts, f.state, f.last_error, f.send_key FROM followups f JOIN users u ON u.id = f.user_id"
)
_CLAIMABLE = (
    "((state = 'pending' AND due_at <= :now)"
    " OR (state = 'sending' AND (lease_until IS NULL OR lease_until < :now)))"
)


def new_owner() -> str:
    """``host:pid:nonce``: unique per scheduler, and tells a process on the same host whether the owner is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_gone(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: wait for the lease to expire
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (owned by someone else)
    return False


@dataclass(frozen=True, slots=True)
class Claim:
    followup: Followup
    send_key: str


async def _statement(store: Store, sql: str, params: Any) -> list[Any]:
    """One statement with its rows in one call to the database thread: its implicit transaction (and SQLite's write
    lock) never outlives the call, and the Store's lock keeps it out of a Store transaction in progress."""
    async with store._lock:
        return list(await store.db.execute_fetchall(sql, params))


async def claim_due(
    store: Store, owner: str, now: datetime, lease: timedelta, *, platforms: set[str], limit: int = 20
) -> list[Claim]:
    """Claim up to ``limit`` due check-ins of ``platforms`` for ``owner`` until ``now + lease``."""
    if not platforms:
        return []
    await _expire_dead_owners(store, now)
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
    rows = await _statement(store, update, params)
    ids = [int(r[0]) for r in rows]
    if not ids:
        return []
    id_marks = ",".join("?" * len(ids))
    async with store.db.execute(f"{_SELECT} WHERE f.id IN ({id_marks}) ORDER BY f.due_at", ids) as cur:
        found = await cur.fetchall()
    return [Claim(_followup(r), str(r["send_key"])) for r in found]


async def _expire_dead_owners(store: Store, now: datetime) -> None:
    async with store.db.execute(
        "SELECT DISTINCT lease_owner FROM followups WHERE state = 'sending' AND lease_until >= ?", (to_db(now),)
    ) as cur:
        owners = [r[0] for r in await cur.fetchall() if r[0]]
    gone = [o for o in owners if _owner_gone(o)]
    if gone:
        marks = ",".join("?" * len(gone))
        await _statement(
            store, f"UPDATE followups SET lease_until = NULL WHERE state = 'sending' AND lease_owner IN ({marks})", gone
        )


async def held(store: Store, claim: Claim, owner: str) -> bool:
    """Whether ``owner`` still holds the row (not cancelled, answered or taken over since the claim)."""
    async with store.db.execute(
        "SELECT 1 FROM followups WHERE id = ? AND state = 'sending' AND lease_owner = ?", (claim.followup.id, owner)
    ) as cur:
        return await cur.fetchone() is not None


async def already_sent(store: Store, send_key: str) -> bool:
    async with store.db.execute("SELECT 1 FROM sent_keys WHERE key = ?", (send_key,)) as cur:
        return await cur.fetchone() is not None


async def complete(store: Store, claim: Claim, owner: str, now: datetime) -> bool:
    """The check-in was delivered: record its key and move the row to ``awaiting`` (only while we hold it)."""
    f = claim.followup
    # the key first: a crash between the two leaves the row claimed, and whoever takes it over finds the key and
    # records the delivery without sending again
    key = (claim.send_key, to_db(now))
    await _statement(store, "INSERT OR IGNORE INTO sent_keys (key, sent_at) VALUES (?, ?)", key)
    rows = await _statement(
        store,
        "UPDATE followups SET state = 'awaiting', checkins = checkins + 1, attempts = 0, last_error = NULL,"
        " lease_owner = NULL, lease_until = NULL, updated_at = ?"
        " WHERE id = ? AND state = 'sending' AND lease_owner = ? RETURNING id",
        (to_db(now), f.id, owner),
    )
    return bool(rows)


async def release(store: Store, claim: Claim, owner: str, now: datetime, **fields: Any) -> bool:
    """Give a claimed row back (``state`` and other columns in ``fields``), only while we hold it."""
    allowed = {"state", "due_at", "attempts", "last_error"}
    if not set(fields) <= allowed:
        raise ValueError(f"cannot set {sorted(set(fields) - allowed)}")
    values = [to_db(v) if isinstance(v, datetime) else v for v in fields.values()]
    sets = "".join(f"{name} = ?, " for name in fields)
    sql = (
        f"UPDATE followups SET {sets}lease_owner = NULL, lease_until = NULL, updated_at = ?"
        " WHERE id = ? AND state = 'sending' AND lease_owner = ? RETURNING id"
    )
    return bool(await _statement(store, sql, (*values, to_db(now), claim.followup.id, owner)))


async def next_due(store: Store, platforms: set[str]) -> datetime | None:
    """When the next claim can succeed: the earliest pending due time or lease expiry among ``platforms``."""
    if not platforms:
        return None
    marks = ",".join("?" * len(platforms))
    async with store.db.execute(
        "SELECT MIN(CASE WHEN state = 'pending' THEN due_at ELSE COALESCE(lease_until, due_at) END) FROM followups"
        f" WHERE state IN ('pending', 'sending') AND platform IN ({marks})",
        sorted(platforms),
    ) as cur:
        row = await cur.fetchone()
    return from_db(row[0]) if row and row[0] else None


async def purge_sent_keys(store: Store, before: datetime) -> int:
    async with store._lock:
        cur = await store.db.execute("DELETE FROM sent_keys WHERE sent_at < ?", (to_db(before),))
    return cur.rowcount or 0


def _followup(row: Any) -> Followup:
    return Followup(
        id=row["id"], user_id=row["user_id"], platform=row["platform"], platform_user_id=row["platform_user_id"],
        chat_id=row["chat_id"], topic=row["topic"], due_at=from_db(row["due_at"]), checkins=row["checkins"],
        same_count=row["same_count"], attempts=row["attempts"], state=row["state"], last_error=row["last_error"],
    )
