"""Per-user flood control: a token bucket, and at-most-once-a-minute escalation repeats."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: ``ok`` to answer, ``warn`` to say "slow down" once, ``drop`` to stay quiet
Verdict = Literal["ok", "warn", "drop"]

#: at most this many users are tracked at once; the least recently seen are forgotten first
MAX_TRACKED = 50_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class RateLimiter:
    """``messages`` per ``per_seconds`` refill, up to ``burst`` at once. Times are seconds (monotonic)."""

    def __init__(self, messages: int, per_seconds: float, burst: int) -> None:
        self.rate = messages / per_seconds if per_seconds > 0 else float("inf")
        self.burst = max(1, burst)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refill(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def check(self, key: str, now: float) -> Verdict:
        """``ok`` to answer, ``warn`` to say "slow down" once, ``drop`` to stay quiet."""
        bucket = self._refill(key, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if bucket.tokens >= 1.0:
                bucket.warned = False
            return "ok"
        if bucket.warned:
            return "drop"
        bucket.warned = True
        return "warn"

    def take(self, key: str, n: int, now: float) -> None:
        """Spend ``n`` tokens for messages that go out whatever the bucket says (a first red-flag escalation).

        The bucket never goes below zero, so a burst of escalations still counts against the same budget.
        """
        bucket = self._refill(key, now)
        bucket.tokens = max(0.0, bucket.tokens - n)


class RepeatGuard:
    """Remembers when an escalation was last sent per (user, category)."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()

    def is_repeat(self, key: tuple[str, str], now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return True
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > MAX_TRACKED:
            self._last.popitem(last=False)
        return False


class FloodControl(Protocol):
    """Flood control and the repeat-escalation guard, per sender (``platform:user``). In memory for one process;
    shared through the database when several processes answer the same people (PostgreSQL)."""

    async def check(self, who: str) -> Verdict:
        """``ok`` to answer, ``warn`` to say "slow down" once, ``drop`` to stay quiet."""
        ...

    async def take(self, who: str, n: int) -> None:
        """Spend ``n`` tokens for replies that go out whatever the bucket says (a first escalation)."""
        ...

    async def is_repeat(self, who: str, category: str) -> bool:
        """Whether the same escalation went to ``who`` within the window (else it is recorded as sent now)."""
        ...


class MemoryFloodControl:
    """``FloodControl`` in this process's memory (bounded): the token bucket and the repeat guard above."""

    def __init__(
        self, messages: int, per_seconds: float, burst: int, repeat_window: float, monotonic: Callable[[], float]
    ) -> None:
        self.limiter = RateLimiter(messages, per_seconds, burst)
        self.repeats = RepeatGuard(repeat_window)
        self._monotonic = monotonic

    @classmethod
    def of(cls, settings: Any, monotonic: Callable[[], float]) -> MemoryFloodControl:
        """From the core settings (``rate_limit`` and ``safety.repeat_escalation_seconds``)."""
        rl = settings.rate_limit
        return cls(rl.messages, rl.per_seconds, rl.burst, settings.safety.repeat_escalation_seconds, monotonic)

    async def check(self, who: str) -> Verdict:
        return self.limiter.check(who, self._monotonic())

    async def take(self, who: str, n: int) -> None:
        self.limiter.take(who, n, self._monotonic())

    async def is_repeat(self, who: str, category: str) -> bool:
        return self.repeats.is_repeat((who, category), self._monotonic())
