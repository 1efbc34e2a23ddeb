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

from bot.adapters.telegram_drain import Drain, PollerLease
from bot.core.outbox import Lanes, ShuttingDown
from bot.core.ports import StartupError
from bot.core.store import ChatQueue, Inbox, InboxUnavailable

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


async def open_inbox(inbox: Inbox, queue: ChatQueue | None, shared: bool) -> bool:
    """Open the inbox and its shared side (the poller's lease, the chats' leases); False when it cannot be used: then
    updates are answered but not durable (a shared inbox that cannot be opened is a start-up error)."""
    try:
        await inbox.open()
        if queue is not None:
            await queue.open()
    except InboxUnavailable as exc:
        if shared:
            raise StartupError(f"Telegram: the shared inbox cannot be used ({exc})") from None
        log.warning("Telegram: the inbox is unavailable (%s); updates are answered but not durable", exc)
        return False
    return True


class Intake:
    """Fetch (or take from the webhook receiver), store, dispatch per chat, mark done."""

    def __init__(
        self,
        app: Application,  # type: ignore[type-arg]
        inbox: Inbox | None,
        *,
        poll_timeout: float,
        allowed_updates: Sequence[str],
        queue: ChatQueue | None = None,
        shared: bool = False,
    ) -> None:
        """``queue``: the inbox's shared side (the poller's lease; with ``shared``, the updates are handled by
        whichever process holds their chat, see ``telegram_drain``)."""
        self.app = app
        self.inbox = inbox
        self.queue = queue
        self.drainer = Drain(app.bot, queue, self.handle_now) if shared and queue is not None else None
        self.poller = PollerLease(queue, f"{inbox.platform}:getUpdates") if queue and inbox else None
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
        if self.drainer is not None:  # the shared inbox: what is pending is drained like everything else
            offset = await self._offset()
            self.drainer.start()
        else:
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
        if self.poller is not None:
            with contextlib.suppress(InboxUnavailable):
                await self.poller.release()

    async def drain(self, grace: float) -> None:
        """Finish the updates being handled and their deliveries, for at most ``grace`` seconds; what is left stays
        pending in the inbox (answered after the restart)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self.drainer is not None:
            await self.drainer.stop(max(0.1, grace * 0.5))
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
        if self.poller is not None:
            await self.poller.wait()
            offset = await self._offset() or offset  # the other poller may have stored more meanwhile
        while True:
            if self.poller is not None and not await self.poller.keep():
                log.warning("Telegram: another process took over polling; this one stands by")
                await self.poller.wait()
                offset = await self._offset() or offset
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
        stored = False
        if self.inbox is not None:
            rows = [(u.update_id, chat_key(u), u.to_dict()) for u in updates]
            try:
                fresh = await self.inbox.add(rows)
                stored, self._warned = True, False
            except InboxUnavailable as exc:
                if not self._warned:
                    log.warning("Telegram: cannot store updates (%s); answering from memory, not durable", exc)
                    self._warned = True
        if self.drainer is not None and stored:
            self.drainer.wake()  # stored: handled by whichever process holds the chat
            return
        for update in updates:
            if update.update_id in fresh:
                self._open.add(update.update_id)
                self.lanes.put_nowait(chat_key(update), update)

    # ----------------------------------------------------------------- handling
    async def handle_now(self, update: Update) -> bool:
        """Handle one update of the shared inbox and wait for its replies to go out; False: not answered (shutdown),
        it stays pending."""
        await self.app.process_update(update)
        task = self._deliveries.pop(update.update_id, None)
        if task is None:
            return True
        try:
            await task
        except (ShuttingDown, asyncio.CancelledError):
            return False
        except Exception as exc:
            log.error("Telegram: delivering update %s failed", update.update_id, exc_info=exc)
        return True

    async def _offset(self) -> int | None:
        """Where getUpdates starts: after the highest update ever stored."""
        if self.inbox is None:
            return None
        try:
            last = await self.inbox.last_id()
        except InboxUnavailable:
            return None
        self._last = max(self._last, last or 0)
        return None if last is None else last + 1

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
