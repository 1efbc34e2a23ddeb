"""The one Store: SQLite through aiosqlite, schema migrations by PRAGMA user_version, parameterized queries."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.buffers import FLUSH_EVERY, STORAGE_ERRORS, BufferedWrites
from bot.storage.health import (
    BUSY_TIMEOUT_MS,
    DatabaseUnusable,
    FileChecks,
    SchemaTooNew,
    _close_quietly,
    adopt_recovered,
    describe_open_error,
    file_identity,
)
from bot.storage.lru import USER_CACHE_LIMIT, LruCache

log = logging.getLogger(__name__)

__all__ = [
    "ACTIVE_FOLLOWUP_STATES", "FLUSH_EVERY", "STORAGE_ERRORS", "DatabaseUnusable", "Followup", "Store", "StoredTriage",
    "User", "from_db", "to_db",
]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ACTIVE_FOLLOWUP_STATES = ("pending", "sending", "awaiting")


def to_db(when: datetime) -> str:
    """UTC text that sorts in time order."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: the store only takes timezone-aware times")
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def from_db(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class User:
    """A runner on one platform."""

    id: int
    platform: str
    platform_user_id: str
    created_at: datetime
    notice_shown: bool
    followups_enabled: bool
    #: created by this very call (nothing else can be stored about the user yet); not a column
    new: bool = dataclasses.field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class StoredTriage:
    """A user's position in the triage flow."""

    flow_id: str
    step_id: str
    answers: tuple[tuple[str, int], ...]
    chat_id: str


@dataclass(frozen=True, slots=True)
class Followup:
    """One check-in series for one user."""

    id: int
    user_id: int
    platform: str
    platform_user_id: str
    chat_id: str
    topic: str
    due_at: datetime
    checkins: int
    same_count: int
    attempts: int
    state: str
    last_error: str | None


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.storage") / "migrations"
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), item.read_text(encoding="utf-8")))
    return sorted(found)


class Store(BufferedWrites, FileChecks):
    """Per-user state, escalation log, unanswered questions, follow-ups and counters."""

    def __init__(self, path: str | Path, *, clock: Any = None) -> None:
        self.path = str(path)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._user_cache: LruCache[tuple[str, str], User] = LruCache(USER_CACHE_LIMIT)
        self._pending_stats: dict[tuple[str, str], int] = {}
        self._pending_unanswered: dict[tuple[str, int], tuple[int, str, str]] = {}
        self._flushing: asyncio.Task[None] | None = None
        #: (st_dev, st_ino) of the file when it was opened: a different or missing file means it was deleted
        self._identity: tuple[int, int] | None = None
        self.file_lost = False
        #: called with a one-line problem report (the database file vanished); set by bootstrap
        self.on_problem: Callable[[str], Awaitable[None]] | None = None

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Open (creating) the file and migrate it; a file that cannot be used raises DatabaseUnusable (one line)."""
        try:
            if self.path != ":memory:":
                await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
                await asyncio.to_thread(adopt_recovered, self.path)
            self._db = await self._connect(self.path)
            if self.path != ":memory:":
                await self._quick_check()
            await self._migrate()
            if self.path != ":memory:":
                await self._write_probe()
                self._identity = await asyncio.to_thread(file_identity, self.path)
        except BaseException as exc:
            # the connection's thread is not a daemon: a connection left open keeps the process alive forever
            await self._abandon()
            if isinstance(exc, (*STORAGE_ERRORS, SchemaTooNew)):
                raise DatabaseUnusable(await asyncio.to_thread(describe_open_error, self.path, exc)) from None
            raise

    @staticmethod
    async def _connect(path: str) -> aiosqlite.Connection:
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path != ":memory:":
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await _close_quietly(db)
            raise
        return db

    async def _abandon(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await _close_quietly(db)

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._flushing is not None:
                await asyncio.wait({self._flushing}, timeout=1.0)
            await self.flush()
            lost = len(self._pending_stats) + len(self._pending_unanswered)
            if lost:
                log.warning("%d counter(s) and unanswered question(s) could not be written and are lost", lost)
            if self.file_lost:
                await self._save_recovered()  # the copy the next start adopts, now with everything
        except STORAGE_ERRORS as exc:  # full or locked at shutdown: say so, never a traceback on the way out
            log.error("could not write the last counters to %s: %s", self.path, exc)
        finally:
            await self._abandon()

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        known = _migrations()
        newest = known[-1][0] if known else 0
        if current > newest:
            raise SchemaTooNew(current, newest)
        for version, sql in known:
            if version <= current:
                continue
            log.info("applying database migration %04d", version)
            await self.db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    # ----------------------------------------------------------------- users
    async def user(self, platform: str, platform_user_id: str) -> User:
        """The user's row, created on first contact."""
        key = (platform, platform_user_id)
        cached = self._user_cache.get(key)
        if cached is not None:
            return cached
        # a read first: while another process holds the write lock (WAL) a known user is still found at once
        known = await self.find_user(platform, platform_user_id)
        if known is not None:
            self._user_cache[key] = known
            return known
        async with self._lock:
            async with self.db.execute(
                "INSERT INTO users (platform, platform_user_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (platform, platform_user_id) DO NOTHING RETURNING *",
                (platform, platform_user_id, to_db(self._now())),
            ) as cur:
                row = await cur.fetchone()
        if row is not None:
            found: User | None = dataclasses.replace(_user(row), new=True)
        else:
            found = await self.find_user(platform, platform_user_id)
        if found is None:
            raise RuntimeError("user row vanished while it was being read")
        self._user_cache[key] = dataclasses.replace(found, new=False)
        return found

    async def find_user(self, platform: str, platform_user_id: str) -> User | None:
        async with self.db.execute(
            "SELECT * FROM users WHERE platform = ? AND platform_user_id = ?", (platform, platform_user_id)
        ) as cur:
            row = await cur.fetchone()
        return _user(row) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        async with self.db.execute("SELECT * FROM users WHERE id = ?", (user_id,)) as cur:
            row = await cur.fetchone()
        return _user(row) if row else None

    async def set_notice_shown(self, user: User) -> None:
        await self.db.execute("UPDATE users SET notice_shown = 1 WHERE id = ?", (user.id,))
        self._user_cache.pop((user.platform, user.platform_user_id), None)

    async def set_followups_enabled(self, user: User, enabled: bool) -> None:
        await self.db.execute("UPDATE users SET followups_enabled = ? WHERE id = ?", (int(enabled), user.id))
        self._user_cache.pop((user.platform, user.platform_user_id), None)

    # ----------------------------------------------------------------- triage
    async def get_triage(self, user: User) -> StoredTriage | None:
        async with self.db.execute("SELECT * FROM triage_state WHERE user_id = ?", (user.id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return StoredTriage(row["flow_id"], row["step_id"], _answers(row["answers"]), row["chat_id"])

    async def conversation(self, user: User) -> tuple[StoredTriage | None, int | None]:
        """In one round trip: the user's triage position and the id of a check-in awaiting their answer."""
        async with self.db.execute(
            "SELECT t.flow_id, t.step_id, t.answers, t.chat_id,"
            " (SELECT id FROM followups WHERE user_id = ? AND state = 'awaiting' ORDER BY id DESC LIMIT 1) AS fu"
            " FROM (SELECT 1) LEFT JOIN triage_state t ON t.user_id = ?",
            (user.id, user.id),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None, None
        triage = None
        if row["flow_id"] is not None:
            triage = StoredTriage(row["flow_id"], row["step_id"], _answers(row["answers"]), row["chat_id"])
        return triage, row["fu"]

    async def save_triage(self, user: User, state: StoredTriage) -> None:
        await self.db.execute(
            "INSERT INTO triage_state (user_id, flow_id, step_id, answers, chat_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET flow_id = excluded.flow_id,"
            " step_id = excluded.step_id, answers = excluded.answers, chat_id = excluded.chat_id,"
            " updated_at = excluded.updated_at",
            (
                user.id,
                state.flow_id,
                state.step_id,
                json.dumps([list(a) for a in state.answers]),
                state.chat_id,
                to_db(self._now()),
            ),
        )

    async def clear_triage(self, user: User) -> bool:
        cur = await self.db.execute("DELETE FROM triage_state WHERE user_id = ?", (user.id,))
        return (cur.rowcount or 0) > 0

    # ----------------------------------------------------------------- escalations, unanswered, counters
    async def log_escalation(self, user: User, level: str, category: str) -> None:
        """Who, which level and category, when: never the message text."""
        await self.db.execute(
            "INSERT INTO escalations (user_id, level, category, created_at) VALUES (?, ?, ?, ?)",
            (user.id, level, category, to_db(self._now())),
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
        except STORAGE_ERRORS as exc:  # tried again at the next round
            log.warning("retention: could not remove old rows from %s: %s", self.path, exc)
        return removed

    # ----------------------------------------------------------------- follow-ups
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
        async with self.db.execute(
            "SELECT MIN(due_at) FROM followups WHERE state IN ('pending', 'sending')"
        ) as cur:
            row = await cur.fetchone()
        return from_db(row[0]) if row and row[0] else None

    async def due_followups(self, now: datetime, limit: int = 100) -> list[Followup]:
        async with self.db.execute(
            _FOLLOWUP_SELECT + " WHERE f.state IN ('pending', 'sending') AND f.due_at <= ? ORDER BY f.due_at LIMIT ?",
            (to_db(now), limit),
        ) as cur:
            rows = await cur.fetchall()
        return [_followup(r) for r in rows]

    async def get_followup(self, followup_id: int) -> Followup | None:
        async with self.db.execute(_FOLLOWUP_SELECT + " WHERE f.id = ?", (followup_id,)) as cur:
            row = await cur.fetchone()
        return _followup(row) if row else None

    async def user_followups(self, user: User, *, active_only: bool = False) -> list[Followup]:
        query = _FOLLOWUP_SELECT + " WHERE f.user_id = ?"
        if active_only:
            query += " AND f.state IN ('pending', 'sending', 'awaiting')"
        async with self.db.execute(query + " ORDER BY f.id", (user.id,)) as cur:
            rows = await cur.fetchall()
        return [_followup(r) for r in rows]

    async def list_followups(self, states: tuple[str, ...] = ACTIVE_FOLLOWUP_STATES) -> list[Followup]:
        marks = ",".join("?" * len(states))
        async with self.db.execute(
            _FOLLOWUP_SELECT + f" WHERE f.state IN ({marks}) ORDER BY f.due_at", states
        ) as cur:
            rows = await cur.fetchall()
        return [_followup(r) for r in rows]

    async def update_followup(self, followup_id: int, *, expect_state: str | None = None, **fields: Any) -> bool:
        """Set columns of one follow-up (state, due_at, checkins, same_count, attempts, last_error).

        With ``expect_state`` the row changes only while it is still in that state (a check-in cancelled during a
        send stays cancelled). Returns whether a row changed.
        """
        allowed = {"state", "due_at", "checkins", "same_count", "attempts", "last_error"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
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

    async def claim_followup(self, followup_id: int) -> bool:
        """Mark a due check-in as being sent, unless it was cancelled (or answered) meanwhile."""
        async with self._lock:
            cur = await self.db.execute(
                "UPDATE followups SET state = 'sending', updated_at = ?"
                " WHERE id = ? AND state IN ('pending', 'sending')",
                (to_db(self._now()), followup_id),
            )
        return (cur.rowcount or 0) > 0

    async def cancel_followups(self, user: User) -> int:
        async with self._lock:
            cur = await self.db.execute(
                "UPDATE followups SET state = 'cancelled', updated_at = ? WHERE user_id = ? AND state IN"
                " ('pending', 'sending', 'awaiting')",
                (to_db(self._now()), user.id),
            )
        return cur.rowcount or 0

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
        if out["triage"]:
            out["triage"]["answers"] = [list(a) for a in triage.answers]  # type: ignore[union-attr]
        async with self.db.execute(
            "SELECT level, category, created_at FROM escalations WHERE user_id = ? ORDER BY id", (fresh.id,)
        ) as cur:
            out["escalations"] = [dict(r) for r in await cur.fetchall()]
        async with self.db.execute("SELECT * FROM followups WHERE user_id = ? ORDER BY id", (fresh.id,)) as cur:
            out["followups"] = [
                {k: r[k] for k in r.keys() if k not in ("id", "user_id")} for r in await cur.fetchall()
            ]
        if out["triage"]:
            async with self.db.execute("SELECT updated_at FROM triage_state WHERE user_id = ?", (fresh.id,)) as cur:
                row = await cur.fetchone()
            out["triage"]["updated_at"] = row["updated_at"] if row else None
        await self.flush()
        async with self.db.execute(
            "SELECT normalized, count, first_seen, last_seen FROM unanswered WHERE user_id = ? ORDER BY first_seen",
            (fresh.id,),
        ) as cur:
            out["unanswered"] = [
                {"question": r["normalized"], "count": r["count"], "first_seen": r["first_seen"],
                 "last_seen": r["last_seen"]}
                for r in await cur.fetchall()
            ]
        return out

    async def forget_user(self, user: User) -> None:
        """Delete every row about the user in every table, their unanswered questions included."""
        for key in [key for key in self._pending_unanswered if key[1] == user.id]:
            del self._pending_unanswered[key]
        async with self._lock:
            await self.db.execute("BEGIN")
            try:
                for table in ("triage_state", "escalations", "followups", "unanswered"):
                    await self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user.id,))
                await self.db.execute("DELETE FROM users WHERE id = ?", (user.id,))
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        self._user_cache.pop((user.platform, user.platform_user_id), None)


_FOLLOWUP_SELECT = (
    "SELECT f.*, u.platform_user_id AS platform_user_id FROM followups f JOIN users u ON u.id = f.user_id"
)


def _answers(text: str) -> tuple[tuple[str, int], ...]:
    try:
        return tuple((str(a[0]), int(a[1])) for a in json.loads(text))
    except (ValueError, TypeError, IndexError, KeyError):
        return ()


def _user(row: aiosqlite.Row) -> User:
    return User(
        id=row["id"],
        platform=row["platform"],
        platform_user_id=row["platform_user_id"],
        created_at=from_db(row["created_at"]),
        notice_shown=bool(row["notice_shown"]),
        followups_enabled=bool(row["followups_enabled"]),
    )


def _followup(row: aiosqlite.Row) -> Followup:
    return Followup(
        id=row["id"],
        user_id=row["user_id"],
        platform=row["platform"],
        platform_user_id=row["platform_user_id"],
        chat_id=row["chat_id"],
        topic=row["topic"],
        due_at=from_db(row["due_at"]),
        checkins=row["checkins"],
        same_count=row["same_count"],
        attempts=row["attempts"],
        state=row["state"],
        last_error=row["last_error"],
    )
