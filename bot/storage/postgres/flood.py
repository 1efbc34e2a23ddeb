"""What several processes must know about a sender without storing who they are (PostgreSQL): flood control and
the repeat-escalation guard (``bot.core.ratelimit.FloodControl``), and who has seen the one-time notice
(``bot.core.notices.SeenNotices``).

Flood control keeps one token bucket per sender in ``flood`` (a plpgsql function decides under the row's lock, in one
round trip) and the last escalation per sender and category in ``escalation_repeats`` (one conditional upsert);
``notices_seen`` holds when a sender saw the notice. The key is a SHA-256 of ``platform:user`` (never the id itself);
idle flood rows go within minutes, notice rows after ``privacy.retention_days``. Nothing here may hold a reply up:
each question gets ``BUDGET`` seconds (the notice ``NOTICE_BUDGET``), and a database that does not answer in time
(or fails) is replaced by this process's memory until it answers again (one warning line): exactly the
single-process behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from bot.core.ratelimit import MemoryFloodControl, Verdict
from bot.core.store import StoreUnavailable
from bot.storage.postgres.base import PG_ERRORS

if TYPE_CHECKING:
    from bot.storage.postgres.store import PostgresStore

log = logging.getLogger(__name__)

#: how long one flood-control decision may wait for the database before this process's memory decides (a red flag's
#: repeat check is one of them)
BUDGET = 0.25
#: the notice check waits longer: it is on the way of a question's answer only (the database is needed there anyway)
NOTICE_BUDGET = 1.0
#: a database that keeps missing the budget is reported at most this often (seconds)
WARN_EVERY = 60.0
#: how often old rows are deleted (seconds)
PURGE_EVERY = 60.0
_ERRORS = (*PG_ERRORS, StoreUnavailable, TimeoutError)


def sender_key(who: str) -> str:
    return hashlib.sha256(who.encode("utf-8")).hexdigest()


class _Shared:
    """One question to the database within ``BUDGET``, or StoreUnavailable; and a purge now and then."""

    what = "shared state"
    budget = BUDGET

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._warned = -WARN_EVERY
        self._purged = time.monotonic()
        self._purging: asyncio.Task[None] | None = None

    async def _ask(self, sql: str, *args: object) -> object:
        try:
            async with asyncio.timeout(self.budget), self.store._pool_conn() as con:
                value = await con.fetchval(sql, *args)
        except Exception as exc:  # whatever goes wrong here, a reply (a red flag's above all) must not: memory decides
            if not isinstance(exc, _ERRORS):
                log.exception("%s: unexpected error; deciding from memory", self.what)
            elif time.monotonic() - self._warned >= WARN_EVERY:  # one line a minute at most, however busy
                self._warned = time.monotonic()
                log.warning("%s: the database did not answer (%s); deciding from memory", self.what,
                            exc or type(exc).__name__)
            raise StoreUnavailable(str(exc)) from None
        now = time.monotonic()
        if now - self._purged >= PURGE_EVERY and (self._purging is None or self._purging.done()):
            self._purged = now
            self._purging = asyncio.create_task(self._purge_quietly(), name="shared-purge")
        return value

    async def _purge_quietly(self) -> None:
        try:
            async with self.store._pool_conn() as con:
                await self._purge(con)
        except _ERRORS as exc:  # tried again a minute later
            log.debug("%s: could not delete old rows: %s", self.what, exc)

    async def _purge(self, con: Any) -> None:
        raise NotImplementedError


class PgFloodControl(_Shared):
    """``FloodControl`` through the database, with this process's memory as the fallback."""

    what = "flood control"

    def __init__(
        self, store: PostgresStore, messages: int, per_seconds: float, burst: int, repeat_window: float
    ) -> None:
        super().__init__(store)
        self.rate = messages / per_seconds if per_seconds > 0 else 1e9
        self.burst = max(1, burst)
        self.window = repeat_window
        self.memory = MemoryFloodControl(messages, per_seconds, burst, repeat_window, time.monotonic)

    async def check(self, who: str) -> Verdict:
        try:
            verdict = await self._ask(
                "SELECT runbot_flood_check($1, $2, $3, 0)", sender_key(who), self.rate, float(self.burst)
            )
        except StoreUnavailable:
            return await self.memory.check(who)
        return verdict  # type: ignore[return-value]

    async def take(self, who: str, n: int) -> None:
        try:
            await self._ask(
                "SELECT runbot_flood_check($1, $2, $3, $4)", sender_key(who), self.rate, float(self.burst), n
            )
        except StoreUnavailable:
            await self.memory.take(who, n)

    async def is_repeat(self, who: str, category: str) -> bool:
        try:
            sent = await self._ask(
                "INSERT INTO escalation_repeats AS r (key, category, sent_at) VALUES ($1, $2, clock_timestamp())"
                " ON CONFLICT (key, category) DO UPDATE SET sent_at = excluded.sent_at"
                " WHERE r.sent_at < clock_timestamp() - make_interval(secs => $3) RETURNING 1",
                sender_key(who), category, float(self.window),
            )
        except StoreUnavailable:
            return await self.memory.is_repeat(who, category)
        return sent is None  # no row written: one was sent within the window

    async def _purge(self, con: Any) -> None:
        """Rows that say no more than a missing row would: a bucket full again, a window passed."""
        idle = self.burst / self.rate + 60.0
        await con.execute("DELETE FROM flood WHERE updated_at < clock_timestamp() - make_interval(secs => $1)", idle)
        await con.execute(
            "DELETE FROM escalation_repeats WHERE sent_at < clock_timestamp() - make_interval(secs => $1)",
            float(self.window) + 60.0,
        )


class PgSeenNotices(_Shared):
    """``SeenNotices`` through the database: a runner with no row sees the notice once whichever process answers."""

    what = "the first-message notice"
    budget = NOTICE_BUDGET

    def __init__(self, store: PostgresStore, keep_days: int) -> None:
        super().__init__(store)
        self.keep_days = keep_days

    async def seen(self, who: str) -> bool:
        """Whether any process showed ``who`` the notice (False when the database does not answer in time)."""
        try:
            return await self._ask("SELECT 1 FROM notices_seen WHERE key = $1", sender_key(who)) is not None
        except StoreUnavailable:
            return False

    async def remember(self, who: str) -> None:
        try:
            await self._ask(
                "INSERT INTO notices_seen (key, seen_at) VALUES ($1, clock_timestamp()) ON CONFLICT (key) DO NOTHING",
                sender_key(who),
            )
        except StoreUnavailable:
            pass  # this process remembers it; another may show it once more

    async def _purge(self, con: Any) -> None:
        await con.execute(
            "DELETE FROM notices_seen WHERE seen_at < clock_timestamp() - make_interval(days => $1)", self.keep_days
        )
