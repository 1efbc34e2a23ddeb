"""Consent rows (issue 16): who agreed to which consent text and when; withdrawal; the full export for /mydata."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.storage.sqlite import STORAGE_ERRORS, Store, User, from_db, to_db

log = logging.getLogger(__name__)

#: follow-up states after which a row has no further use: deleted by the retention round
FINISHED_FOLLOWUPS = ("done", "cancelled", "failed", "dropped")
#: the tables that hold health data about a user (deleted on withdrawal; /forget deletes the user row too)
HEALTH_TABLES = ("triage_state", "followups", "escalations", "unanswered")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One user's stored "Yes, I agree": the consent text's version and SHA-256, and when it was given."""

    version: str
    text_hash: str
    given_at: datetime


async def current(store: Store, user: User) -> ConsentRecord | None:
    """The user's stored consent, or None (never asked, refused, or withdrawn). User id 0 (a stand-in) has none."""
    if user.id == 0:
        return None
    async with store.db.execute(
        "SELECT version, text_hash, given_at FROM consents WHERE user_id = ?", (user.id,)
    ) as cur:
        row = await cur.fetchone()
    return ConsentRecord(row["version"], row["text_hash"], from_db(row["given_at"])) if row else None


async def give(store: Store, user: User, version: str, text_hash: str) -> None:
    """Record (or renew, for a new version) the user's consent: user, platform, version, text hash and time."""
    await store.db.execute(
        "INSERT INTO consents (user_id, platform, version, text_hash, given_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET platform = excluded.platform, version = excluded.version,"
        " text_hash = excluded.text_hash, given_at = excluded.given_at",
        (user.id, user.platform, version, text_hash, to_db(store._now())),
    )


async def withdraw(store: Store, user: User) -> dict[str, int]:
    """Delete the consent and every health row of the user (check progress, check-ins of any state, their safety
    log and unanswered questions), in one transaction; the user row itself stays (platform id, notice shown).
    Returns how many rows went from each table."""
    for key in [key for key in store._pending_unanswered if key[1] == user.id]:
        del store._pending_unanswered[key]
    removed: dict[str, int] = {}
    async with store._lock:
        await store.db.execute("BEGIN")
        try:
            for table in (*HEALTH_TABLES, "consents"):
                cur = await store.db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user.id,))
                removed[table] = cur.rowcount or 0
            await store.db.execute("COMMIT")
        except BaseException:
            await store.db.execute("ROLLBACK")
            raise
    return removed


async def log_escalation(store: Store, user: User | None, level: str, category: str) -> None:
    """A safety-log row: linked to the user only with their consent, else level, category and time only."""
    if user is not None and await current(store, user) is not None:
        await store.log_escalation(user, level, category)
        return
    await store.db.execute(
        "INSERT INTO escalations (user_id, level, category, created_at) VALUES (NULL, ?, ?, ?)",
        (level, category, to_db(store._now())),
    )


async def export(store: Store, user: User) -> dict[str, Any]:
    """Everything stored about the user (``Store.export_user`` plus the consent row), JSON-able."""
    data = await store.export_user(user)
    record = await current(store, user)
    data["consent"] = (
        {"version": record.version, "text_sha256": record.text_hash, "given_at": to_db(record.given_at)}
        if record else None
    )
    return data


def export_json(data: dict[str, Any]) -> bytes:
    """The /mydata file: UTF-8 JSON, one document."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


async def purge_health(store: Store, *, triage_days: int) -> int:
    """Retention for health rows (issue 16): answers of a check untouched for ``triage_days`` (a finished one is
    deleted when it ends) and finished check-ins. Best effort: a locked or full database is one warning line and the
    next round tries again. Returns how many rows went."""
    cutoff = to_db(store._now() - timedelta(days=triage_days))
    marks = ",".join("?" * len(FINISHED_FOLLOWUPS))
    try:
        async with store._lock:
            cur = await store.db.execute("DELETE FROM triage_state WHERE updated_at < ?", (cutoff,))
            removed = cur.rowcount or 0
            cur = await store.db.execute(f"DELETE FROM followups WHERE state IN ({marks})", FINISHED_FOLLOWUPS)
            return removed + (cur.rowcount or 0)
    except STORAGE_ERRORS as exc:
        log.warning("retention: could not remove old check answers or finished check-ins: %s", exc)
        return 0
