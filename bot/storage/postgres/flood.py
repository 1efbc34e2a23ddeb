"""Flood control and the repeat-escalation guard shared by every process on PostgreSQL (``bot.core.ratelimit``'s
``FloodControl``): one token bucket per sender in ``flood`` (a plpgsql function decides under the row's lock, in one
round trip) and the last escalation per sender and category in ``escalation_repeats`` (one conditional upsert).

The key is a SHA-256 of ``platform:user`` (never the id itself) and a row of a sender who has been quiet longer than
a full refill is deleted within a minute or so. A red flag never waits for this: each decision gets ``BUDGET``
seconds; a database that does not answer in time (or fails) is replaced by this process's memory until it answers
again (one warning line), exactly the single-process behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from bot.core.ratelimit import MemoryFloodControl, Verdict
from bot.core.store import StoreUnavailable
from bot.storage.postgres.base import PG_ERRORS

if TYPE_CHECKING:
    from bot.storage.postgres.store import PostgresStore

log = logging.getLogger(__name__)

#: how long one decision may wait for the database before this process's memory decides
BUDGET = 0.25
#: how often idle rows are deleted (seconds)
PURGE_EVERY = 60.0
_ERRORS = (*PG_ERRORS, StoreUnavailable, TimeoutError)


def sender_key(who: str) -> str:
    return hashlib.sha256(who.encode("utf-8")).hexdigest()


class PgFloodControl:
    """``FloodControl`` through the database, with this process's memory as the fallback."""

    def __init__(
        self, store: PostgresStore, messages: int, per_seconds: float, burst: int, repeat_window: float
    ) -> None:
        self.store = store
        self.rate = messages / per_seconds if per_seconds > 0 else 1e9
        self.burst = max(1, burst)
        self.window = repeat_window
        self.memory = MemoryFloodControl(messages, per_seconds, burst, repeat_window, time.monotonic)
        self._failing = False
        self._purged = time.monotonic()
        self._purging: asyncio.Task[None] | None = None

    async def _ask(self, sql: str, *args: object) -> object:
        try:
            async with asyncio.timeout(BUDGET), self.store._pool_conn() as con:
                value = await con.fetchval(sql, *args)
        except Exception as exc:  # whatever goes wrong here, a red flag's reply must not: memory decides
            if not isinstance(exc, _ERRORS):
                log.exception("flood control: unexpected error; deciding from memory")
            elif not self._failing:
                log.warning("flood control: the database did not answer (%s); deciding from memory",
                            exc or type(exc).__name__)
            self._failing = True
            raise StoreUnavailable(str(exc)) from None
        if self._failing:
            log.info("flood control: shared through the database again")
            self._failing = False
        self._maybe_purge()
        return value

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

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._purged < PURGE_EVERY or (self._purging is not None and not self._purging.done()):
            return
        self._purged = now
        self._purging = asyncio.create_task(self._purge(), name="flood-purge")

    async def _purge(self) -> None:
        """Rows that say no more than a missing row would: a bucket full again, a window passed."""
        idle = self.burst / self.rate + 60.0
        try:
            async with self.store._pool_conn() as con:
                await con.execute(
                    "DELETE FROM flood WHERE updated_at < clock_timestamp() - make_interval(secs => $1)", idle
                )
                await con.execute(
                    "DELETE FROM escalation_repeats WHERE sent_at < clock_timestamp() - make_interval(secs => $1)",
                    float(self.window) + 60.0,
                )
        except _ERRORS as exc:  # tried again a minute later
            log.debug("flood control: could not delete idle rows: %s", exc)
