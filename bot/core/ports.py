"""The narrow interfaces the core depends on: adapters (platforms) and the clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from bot.core.messages import ChatRef, Reply


class DeliveryError(Exception):
    """A message could not be delivered. ``permanent`` means retrying will not help (blocked, DMs closed)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class StartupError(RuntimeError):
    """Something cannot start (bad token, unreachable API, bad settings); the message is one line, never a token."""


class Adapter(Protocol):
    """A platform connection. ``send`` delivers replies to a user's private chat; raises DeliveryError.
    ``notify_moderators`` posts a note (knowledge reload problems, storage trouble, the weekly digest) in the
    platform's moderators' chat: False when there is none or it failed."""

    platform: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None: ...

    async def notify_moderators(self, text: str) -> bool: ...


class Clock(Protocol):
    """Current time, always timezone-aware UTC. Injected so tests move time without sleeping."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self._now += timedelta(**kwargs)

    def set(self, when: datetime) -> None:
        self._now = when
