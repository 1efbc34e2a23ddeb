"""Per-user flood control: a token bucket, and at-most-once-a-minute escalation repeats."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

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
