"""Handling Telegram updates from a shared inbox (``telegram.inbox: shared``): several processes, each chat in order.

Every process that runs the Telegram adapter on the same database drains the inbox: it holds chats nobody holds
(``bot.core.store.ChatQueue``), handles each held chat's pending updates one after the other (an update's replies are
delivered before the chat's next update is handled, so replies never overtake one another even when the next update
is handled elsewhere), marks them done and writes the marks. A chat with nothing pending stays with the process for
the rest of its lease (up to 30 s), so the conversation's next message finds the process that remembers it (a
safety question waiting for its answer, the first-message notice of a runner with no row); then it is free. Which
process received an update (a webhook receiver, the poller) does not matter: receiving only stores.

The poller's lease lives here too: Telegram gives getUpdates to one consumer per bot, so a second process started in
polling mode says so in one line and stands by (taking over when the first stops), draining meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, Update

from bot.core.store import ChatQueue, InboxUnavailable

log = logging.getLogger(__name__)

#: chats one process works on at once (most of them wait for their replies to go out at the chat's pace)
MAX_CHATS = 64
#: chats reading the inbox at once (the store bounds the engine's turns itself: database.pool_size); the receiver's
#: writes, the claims and the done marks need connections without waiting
READERS = 3
#: how often an idle process looks for chats with new updates (it is woken at once by what it stores itself)
IDLE_SECONDS = 0.05
#: updates read per round from one chat
BATCH = 20

Handle = Callable[[Update], Awaitable[bool]]


class Drain:
    """Holds chats of the shared inbox and hands their updates, in order, to ``handle`` (True: answered)."""

    def __init__(self, bot: Bot, queue: ChatQueue, handle: Handle) -> None:
        self.bot = bot
        self.queue = queue
        self._handle = handle
        self._readers = asyncio.Semaphore(READERS)
        self._chats: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._warned = False
        self.handled = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram-drain")

    def wake(self) -> None:
        self._wake.set()

    def __len__(self) -> int:
        return len(self._chats)

    async def stop(self, grace: float) -> None:
        """Take no new chat; finish the updates being handled for up to ``grace`` seconds; let every chat go (what
        is left stays pending for the other processes, or this one's next start)."""
        self._stopping = True
        self._wake.set()
        tasks = [t for t in (self._task, *self._chats.values()) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.queue.release_all()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + self.queue.lease.total_seconds() / 3
        while not self._stopping:
            self._wake.clear()
            full = False
            try:
                free = MAX_CHATS - len(self._chats)
                if free > 0:
                    keys = await self.queue.claim(free, list(self._chats))
                    full = len(keys) == free
                    for key in keys:
                        if key not in self._chats:  # a chat of ours whose lease ran out is still being worked on
                            self._chats[key] = asyncio.create_task(self._chat(key), name=f"telegram-chat-{key}")
                if loop.time() >= renew_at:
                    renew_at = loop.time() + self.queue.lease.total_seconds() / 3
                    lost = set(self._chats) - await self.queue.renew(list(self._chats))
                    if lost:
                        log.warning("Telegram: %d chat(s) were held too long and passed to another process", len(lost))
                if self._warned:
                    log.info("Telegram: the shared inbox answers again")
                self._warned = False
            except InboxUnavailable as exc:
                if not self._warned:
                    log.warning("Telegram: the shared inbox is unavailable (%s); retrying", exc)
                self._warned = True
                await asyncio.sleep(1.0)
                continue
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)

    async def _chat(self, key: str) -> None:
        inbox = self.queue.inbox
        try:
            while not self._stopping:
                async with self._readers:
                    rows = await self.queue.updates(key, BATCH)
                if not rows:
                    break
                for update_id, payload in rows:
                    if self._stopping:
                        return
                    update = Update.de_json(payload, self.bot)
                    if update is None or await self._handle(update):
                        inbox.done(update_id)
                        self.handled += 1
                await inbox.flush()  # written before the chat is let go: nobody answers these again
        except InboxUnavailable as exc:
            log.warning("Telegram: chat %s paused: the shared inbox is unavailable (%s)", key, exc)
        except Exception:
            log.exception("Telegram: error while handling chat %s from the shared inbox", key)
        finally:
            self._chats.pop(key, None)
            with contextlib.suppress(InboxUnavailable):
                await inbox.flush()
            # not released: the chat stays with this process for the rest of its lease (ChatQueue.release)
            self._wake.set()  # room for another chat


class PollerLease:
    """The single getUpdates consumer of one bot among the processes on one database."""

    def __init__(self, queue: ChatQueue, name: str) -> None:
        self.queue = queue
        self.name = name
        self.held = False
        self._said = False
        self._renew_at = 0.0

    async def wait(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Return once this process holds the lease (one line while another process has it)."""
        while True:
            try:
                if await self.queue.hold(self.name):
                    if self._said:
                        log.info("Telegram: the other poller stopped; this process polls now")
                    self.held = True
                    self._renew_at = asyncio.get_running_loop().time() + self.queue.lease.total_seconds() / 3
                    return
            except InboxUnavailable as exc:
                log.warning("Telegram: cannot check who polls (%s); retrying", exc)
            if not self._said:
                log.warning(
                    "Telegram: another runbot process already polls this bot (Telegram allows one getUpdates "
                    "consumer); this one stands by and takes over if that one stops"
                )
                self._said = True
            await asyncio.sleep(self.queue.lease.total_seconds() / 3)

    async def keep(self) -> bool:
        """Renew (called each poll round; written at most every lease/3); False when another process took over."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._renew_at:
            return True
        self._renew_at = loop.time() + self.queue.lease.total_seconds() / 3
        try:
            self.held = await self.queue.hold(self.name)
        except InboxUnavailable:
            return True  # the database blinked: keep polling, the updates are handled from memory meanwhile
        return self.held

    async def release(self) -> None:
        if self.held:
            await self.queue.let_go(self.name)
            self.held = False
