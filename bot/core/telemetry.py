"""What the bot tells an operator about its work: a port the engine, the scheduler and the adapters report to.

``bot/ops/metrics.py`` implements it with prometheus_client (``ops.listen``); the default does nothing, so a bot
without the operations endpoint pays nothing. Every method is synchronous and must never raise: it is called on
the message path.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.messages import IncomingMessage, Outcome


class Telemetry(Protocol):
    def handled(self, msg: IncomingMessage, outcome: Outcome, seconds: float) -> None:
        """One message or button handled by the engine (``msg.listen_only``: overheard in a listen channel), with
        what it decided and how long that took."""

    def unanswered(self, platform: str) -> None:
        """A question the FAQ had no answer for (recorded for the moderators)."""

    def send_failed(self, platform: str, *, permanent: bool) -> None:
        """A reply or check-in could not be delivered (``permanent``: retrying will not help)."""

    def send_retried(self, platform: str, reason: str) -> None:
        """A send is tried again: ``flood`` (the platform said retry after), ``network``, ``followup`` (a check-in
        rescheduled after a failure)."""


class NoTelemetry:
    """The default: counts nothing."""

    def handled(self, msg: IncomingMessage, outcome: Outcome, seconds: float) -> None:
        pass

    def unanswered(self, platform: str) -> None:
        pass

    def send_failed(self, platform: str, *, permanent: bool) -> None:
        pass

    def send_retried(self, platform: str, reason: str) -> None:
        pass
