"""What the Telegram adapter tells the operations endpoint: connected or not, queue depths, send retries and failures.

A mixin of ``TelegramAdapter`` (through ``TelegramSending``); the adapter provides the attributes declared here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.core.telemetry import NoTelemetry, Telemetry

if TYPE_CHECKING:
    from bot.adapters.telegram_intake import Intake
    from bot.adapters.telegram_webhook import WebhookReceiver
    from bot.core.outbox import Outbox
    from bot.core.store import Inbox

log = logging.getLogger("bot.adapters.telegram_adapter")


class TelegramOps:
    _engine: Any
    _settings: Any
    _app: Any
    _receive: bool
    _outbox: Outbox | None
    _intake: Intake | None
    _inbox: Inbox | None
    _webhook: WebhookReceiver | None

    @property
    def telemetry(self) -> Telemetry:
        """The engine's (the operations endpoint sets it before the adapters start)."""
        found = getattr(self._engine, "telemetry", None)
        return found if found is not None else NoTelemetry()

    def _network_retry(self) -> None:
        self.telemetry.send_retried("telegram", "network")

    def _flood_retry(self) -> None:
        self.telemetry.send_retried("telegram", "flood")

    def _send_failed(self, exc: BaseException) -> None:
        self.telemetry.send_failed("telegram", permanent=bool(getattr(exc, "permanent", False)))

    def health(self) -> dict[str, object]:
        """Connected: running, and receiving (polling: getUpdates working; webhook: the receiver listening)."""
        mode = self._settings.mode
        if self._app is None:
            return {"connected": False, "mode": mode}
        intake = self._intake
        if not self._receive or mode == "worker":
            receiving = mode != "worker" or intake is not None
        else:
            receiving = self._webhook is not None if mode == "webhook" else intake is not None and intake.polling
        return {"connected": receiving, "mode": mode}

    async def queue_depths(self) -> dict[str, int]:
        """Replies waiting to be sent, updates waiting to be handled here, updates stored and not yet answered."""
        depths = {"outbox": self._outbox.queued() if self._outbox is not None else 0}
        if self._intake is not None:
            drainer = self._intake.drainer
            depths["handling"] = len(self._intake.lanes) + (len(drainer) if drainer is not None else 0)
        if self._inbox is not None:
            try:
                depths["inbox"] = await self._inbox.count("pending")
            except Exception as exc:  # the database is down: /healthz says so; the depth is just missing
                log.debug("Telegram: inbox depth unavailable: %s", exc)
        return depths
