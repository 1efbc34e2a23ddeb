"""Receiving Telegram updates durably and handling them per chat.

PTB's ``Updater`` confirms an update to Telegram as soon as it is fetched (the next ``getUpdates`` carries
``offset = last id + 1``, and ``stop()`` confirms everything fetched), while the update lives only in memory; a crash
or SIGTERM loses it. In polling mode the ``Intake`` calls ``getUpdates`` itself: the updates are written to the
inbox (``bot.core.store.Inbox``, committed) *before* the next call advances the offset. In webhook mode the receiver
(``telegram_webhook``) calls ``accept`` and answers Telegram's request with 200 only after it returned (the update is
stored). An update is marked done once its replies were handed to Telegram; pending ones are replayed at start.

Handling: ``Lanes`` run updates in order within a chat and chats concurrently; a handler registers its delivery
with ``track()``, so the chat's next update is handled while the replies wait in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot.core.outbox import Lanes, ShuttingDown
from bot.core.store import Inbox, InboxUnavailable

log = logging.getLogger(__name__)

#: updates waiting or running in memory before fetching pauses (the rest wait at Telegram)
MAX_WAITING = 1000
FETCH_LIMIT = 100


def chat_key(update: Update) -> str:
    chat = update.effective_chat
    if chat is not None:
        return str(chat.id)
    user = update.effective_user
    return f"user:{user.id}" if user is not None else "misc"


class Intake:
    """Fetch (or take from the webhook receiver), store, dispatch per chat, mark done."""

    def __init__(
        self,
        app: Application,  # type: ignore[type-arg]
        inbox: Inbox | None,
        *,
        poll_timeout: float,
        allowed_updates: Sequence[str],
    ) -> None:
        self.app = app
        self.inbox = inbox
        self.poll_timeout = poll_timeout
        self.allowed_updates = list(allowed_updates)
        self.lanes: Lanes[Update] = Lanes(self._handle, max_waiting=MAX_WAITING)
        self._deliveries: dict[int, asyncio.Task[Any]] = {}
        self._current: dict[int, asyncio.Task[Any]] = {}
        self._receiver: asyncio.Task[None] | None = None
        self._warned = False
        self._open: set[int] = set()  # fetched (or replayed) and not yet answered
        self._last = 0
        self.fetched = 0
        #: the last getUpdates failed (network, or Telegram refused it): /healthz reports Telegram disconnected
        self.failing = False

    # ----------------------------------------------------------------- lifecycle
    async def start(self, *, webhook: bool) -> None:
        """Queue what the last run left unanswered; in polling mode start fetching (a webhook receiver calls
        ``accept`` instead)."""
        offset = await self._replay()
        if not webhook:
            self._receiver = asyncio.create_task(self._poll(offset), name="telegram-intake")

    async def _replay(self) -> int | None:
        """Queue the stored updates that were never answered; return the offset to fetch from."""
        if self.inbox is None:
            return None
        try:
            pending = await self.inbox.pending()
            last = await self.inbox.last_id()
        except InboxUnavailable as exc:
            log.warning("Telegram: the inbox is unavailable (%s); updates are not durable until it is back", exc)
            return None
        if pending:
            log.info("Telegram: answering %d update(s) received before the last stop", len(pending))
        for update_id, payload in pending:
            update = Update.de_json(payload, self.app.bot)
            if update is None:
                self.inbox.done(update_id)
                continue
            self._open.add(update_id)
            self.lanes.put_nowait(chat_key(update), update)
        self._last = last or 0
        return None if last is None else last + 1

    @property
    def polling(self) -> bool:
        """The getUpdates loop runs and its last call worked."""
        return self._receiver is not None and not self._receiver.done() and not self.failing

    async def stop_receiving(self) -> None:
        task, self._receiver = self._receiver, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def drain(self, grace: float) -> None:
        """Finish the updates being handled and their deliveries, for at most ``grace`` seconds; what is left stays
        pending in the inbox (answered after the restart)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self.lanes.close(max(0.1, grace * 0.5))
        tasks = list(self._deliveries.values())
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.05, deadline - loop.time()))

    async def confirm(self) -> None:
        """Tell Telegram to forget what was answered (getUpdates with timeout 0): everything below the oldest update
        still open, so a restart without the inbox does not answer anything twice and loses nothing."""
        if not self._last:
            return
        offset = min(self._open) if self._open else self._last + 1
        with contextlib.suppress(TelegramError, asyncio.TimeoutError):
            await asyncio.wait_for(self.app.bot.get_updates(offset=offset, limit=1, timeout=0), 0.5)

    async def cancel_deliveries(self) -> None:
        tasks = list(self._deliveries.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=0.5)

    # ----------------------------------------------------------------- receiving
    async def _poll(self, offset: int | None) -> None:
        bot = self.app.bot
        pause = 0.0
        while True:
            if pause:
                await asyncio.sleep(pause)
            await self.lanes.room()
            try:
                updates = await bot.get_updates(
                    offset=offset, limit=FETCH_LIMIT, timeout=int(self.poll_timeout),
                    allowed_updates=self.allowed_updates,
                )
            except RetryAfter as exc:
                self.failing = True
                pause = float(exc.retry_after if not hasattr(exc.retry_after, "total_seconds")
                              else exc.retry_after.total_seconds())  # type: ignore[union-attr]
                continue
            except (InvalidToken, Conflict) as exc:
                self.failing = True
                log.error("Telegram: getUpdates refused: %s", exc)
                pause = 5.0
                continue
            except (NetworkError, TelegramError) as exc:
                self.failing = True
                log.warning("Telegram: getUpdates failed (%s); retrying", exc)
                pause = min(max(pause * 2, 1.0), 30.0)
                continue
            pause = 0.0
            self.failing = False
            if not updates:
                continue
            await self._accept(updates)
            offset = updates[-1].update_id + 1  # confirmed to Telegram by the next call: only now

    async def accept(self, updates: list[Update]) -> None:
        """Webhook: store the updates and queue them for their chats (the caller answers Telegram only after this).
        Waits while MAX_WAITING updates are in memory, so Telegram's requests wait too (and it sends no more)."""
        await self.lanes.room()
        await self._accept(updates)

    async def _accept(self, updates: list[Update]) -> None:
        self.fetched += len(updates)
        self._last = max(self._last, updates[-1].update_id) if updates else self._last
        fresh: set[int] = {u.update_id for u in updates}
        if self.inbox is not None:
            rows = [(u.update_id, chat_key(u), u.to_dict()) for u in updates]
            try:
                fresh = await self.inbox.add(rows)
                self._warned = False
            except InboxUnavailable as exc:
                if not self._warned:
                    log.warning("Telegram: cannot store updates (%s); answering from memory, not durable", exc)
                    self._warned = True
        for update in updates:
            if update.update_id in fresh:
                self._open.add(update.update_id)
                self.lanes.put_nowait(chat_key(update), update)

    # ----------------------------------------------------------------- handling
    def track(self, update_id: int, delivery: Coroutine[Any, Any, Any]) -> None:
        """Register the delivery of an update's replies: the update is done when it finishes."""
        task = asyncio.create_task(delivery, name=f"deliver-{update_id}")
        self._deliveries[update_id] = task

    async def _handle(self, update: Update) -> None:
        update_id = update.update_id
        await self.app.process_update(update)  # handler errors go to the error handler (an apology)
        task = self._deliveries.get(update_id)
        if task is None:
            self._done(update_id)
            return
        task.add_done_callback(lambda t: self._delivered(update_id, t))

    def _delivered(self, update_id: int, task: asyncio.Task[Any]) -> None:
        self._deliveries.pop(update_id, None)
        if task.cancelled():
            return  # shutdown: stays pending, answered after the restart
        exc = task.exception()
        if isinstance(exc, ShuttingDown):
            return
        if exc is not None:
            log.error("Telegram: delivering update %s failed", update_id, exc_info=exc)
        self._done(update_id)

    def _done(self, update_id: int) -> None:
        self._open.discard(update_id)
        if self.inbox is not None:
            self.inbox.done(update_id)
