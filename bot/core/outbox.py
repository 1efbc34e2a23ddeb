"""Per-chat send queues and per-chat work lanes: one throttled or hanging chat never delays another.

``Outbox``: every chat has its own FIFO queue and worker. A job is a list of platform calls sent in order (one
update's replies, so two updates' replies never interleave). Pacing is per chat (a token bucket) plus one global
bucket for the platform's overall limit; a platform's "retry after N s" (``Throttled``) pauses only that chat. An
urgent job (an emergency reply) goes to the front of its chat's queue and skips the pacing (not a retry-after: the
platform would refuse it anyway).

``Lanes``: runs work items in order per key and concurrently across keys (incoming updates: in order within a
chat, chats in parallel), with a bound on how many items may wait in memory.

Platform-free: adapters pass plain async callables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.core.ports import DeliveryError

log = logging.getLogger(__name__)

T = TypeVar("T")
Action = Callable[[], Awaitable[Any]]


class Throttled(Exception):
    """Raised by an action when the platform says "retry after ``seconds``" for this chat."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g}s")
        self.seconds = max(0.0, float(seconds))


class ShuttingDown(DeliveryError):
    """The outbox closed before this job was sent (its update stays pending and is answered after a restart)."""

    def __init__(self) -> None:
        super().__init__("shutting down: not sent")


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up. ``wait()`` sleeps until one is free and takes it."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until a token is free (0: now)."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Take a token even if none is free (urgent sends); the debt is paid by later senders."""
        if self.rate > 0:
            self._refill()
            self._tokens -= 1

    async def wait(self) -> None:
        pause = self.delay()
        while pause > 0:
            await asyncio.sleep(pause)
            pause = self.delay()
        self.take()


@dataclass
class _Job:
    actions: Sequence[Action]
    urgent: bool
    future: asyncio.Future[list[Any]]


@dataclass
class _Chat:
    queue: deque[_Job] = field(default_factory=deque)
    bucket: TokenBucket | None = None
    worker: asyncio.Task[None] | None = None
    current: _Job | None = None
    on_wire: bool = False
    paused_until: float = 0.0


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Telegram's published limits: about 30 messages a second overall, 1 a second in one chat, 20 a minute in a
    group; a retry-after longer than ``max_retry_after`` fails the job instead of holding the chat's queue."""

    global_rate: float = 30.0
    global_burst: float = 30.0
    chat_rate: float = 1.0
    chat_burst: float = 5.0
    group_rate: float = 20 / 60
    group_burst: float = 5.0
    max_retry_after: float = 60.0
    max_in_flight: int = 64


class Outbox:
    """Per-chat FIFO send queues (see the module docstring). ``submit`` returns a future with the actions' results,
    or the first action's exception (a DeliveryError, usually)."""

    def __init__(
        self, limits: OutboxLimits | None = None, *, is_group: Callable[[Hashable], bool] | None = None,
        on_retry: Callable[[], None] | None = None, on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``on_retry``: called when a chat is paused by the platform's flood control and its send retried;
        ``on_failure``: with the error of a job that failed (not one cut off by shutdown). For the metrics."""
        self.limits = limits or OutboxLimits()
        self._is_group = is_group or (lambda key: False)
        self._on_retry = on_retry
        self._on_failure = on_failure
        self._global = TokenBucket(self.limits.global_rate, self.limits.global_burst)
        self._in_flight = asyncio.Semaphore(self.limits.max_in_flight)
        self._chats: dict[Hashable, _Chat] = {}
        self._closing = False

    def queued(self, key: Hashable | None = None) -> int:
        if key is not None:
            chat = self._chats.get(key)
            return len(chat.queue) if chat else 0
        return sum(len(c.queue) for c in self._chats.values())

    def submit(self, key: Hashable, actions: Sequence[Action], *, urgent: bool = False) -> asyncio.Future[list[Any]]:
        """Queue ``actions`` (sent in order) for chat ``key``; urgent jobs jump ahead of the chat's queued jobs."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if self._closing:
            future.set_exception(ShuttingDown())
            return future
        chat = self._chats.get(key)
        if chat is None:
            limits = self.limits
            group = self._is_group(key)
            rate, burst = (limits.group_rate, limits.group_burst) if group else (limits.chat_rate, limits.chat_burst)
            chat = self._chats[key] = _Chat(bucket=TokenBucket(rate, burst))
        job = _Job(list(actions), urgent, future)
        if urgent:
            # ahead of every queued ordinary job, behind earlier urgent ones
            index = next((i for i, queued in enumerate(chat.queue) if not queued.urgent), len(chat.queue))
            chat.queue.insert(index, job)
        else:
            chat.queue.append(job)
        if chat.worker is None or chat.worker.done():
            chat.worker = asyncio.create_task(self._work(key, chat), name=f"outbox-{key}")
        return future

    async def _work(self, key: Hashable, chat: _Chat) -> None:
        try:
            while chat.queue and not self._closing:
                job = chat.current = chat.queue.popleft()
                if job.future.cancelled():
                    continue
                try:
                    results = [await self._send(chat, action, job.urgent) for action in job.actions]
                except Exception as exc:
                    if self._on_failure is not None and not isinstance(exc, ShuttingDown):
                        self._on_failure(exc)
                    if not job.future.done():
                        job.future.set_exception(exc)
                else:
                    if not job.future.done():
                        job.future.set_result(results)
                chat.current = None
        finally:
            job = chat.current
            if job is not None and not job.future.done():  # cancelled at shutdown mid-job
                job.future.set_exception(ShuttingDown())
            if self._chats.get(key) is chat and not chat.queue:
                del self._chats[key]  # idle chats cost nothing (no unbounded dict of every chat ever seen)

    async def _send(self, chat: _Chat, action: Action, urgent: bool) -> Any:
        while True:
            if self._closing:
                raise ShuttingDown()
            pause = chat.paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if urgent:
                assert chat.bucket is not None
                chat.bucket.take()
                self._global.take()
            else:
                assert chat.bucket is not None
                await chat.bucket.wait()
                await self._global.wait()
            try:
                async with self._in_flight:
                    chat.on_wire = True
                    try:
                        return await action()
                    finally:
                        chat.on_wire = False
            except Throttled as exc:
                if exc.seconds > self.limits.max_retry_after:
                    raise DeliveryError(f"flood control: retry after {exc.seconds:.0f}s") from exc
                log.warning("flood control in one chat: pausing that chat for %.0fs", exc.seconds)
                if self._on_retry is not None:
                    self._on_retry()
                chat.paused_until = time.monotonic() + exc.seconds

    async def close(self, grace: float) -> None:
        """Start no new sends; give sends on the wire ``grace`` seconds, then cancel; queued jobs fail (not sent)."""
        self._closing = True
        workers = [c.worker for c in self._chats.values() if c.worker is not None and not c.worker.done()]
        for chat in self._chats.values():
            if chat.worker is not None and not chat.on_wire:
                chat.worker.cancel()  # waiting for pacing or a retry-after: nothing on the wire to finish
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.info("outbox: %d send(s) still on the wire at shutdown were cut off", len(pending))
                await asyncio.wait(pending, timeout=0.5)
        for chat in self._chats.values():
            while chat.queue:
                job = chat.queue.popleft()
                if not job.future.done():
                    job.future.set_exception(ShuttingDown())
        self._chats.clear()


class Lanes(Generic[T]):
    """In order per key, concurrently across keys; at most ``max_waiting`` items waiting in memory overall
    (``put`` waits when full). ``handler`` errors are logged and do not stop the lane."""

    def __init__(self, handler: Callable[[T], Awaitable[None]], *, max_waiting: int = 2000) -> None:
        self._handler = handler
        self._lanes: dict[Hashable, deque[T]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._max_waiting = max_waiting
        self._waiting = 0
        self._room = asyncio.Event()
        self._closing = False

    def __len__(self) -> int:
        return self._waiting

    @property
    def full(self) -> bool:
        return self._waiting >= self._max_waiting

    async def room(self) -> None:
        """Wait until fewer than ``max_waiting`` items are waiting or running."""
        while self.full:
            self._room.clear()
            await self._room.wait()

    async def put(self, key: Hashable, item: T) -> None:
        await self.room()
        self.put_nowait(key, item)

    def put_nowait(self, key: Hashable, item: T) -> None:
        """Queue without waiting for room (replayed items: the bound is then exceeded once)."""
        self._waiting += 1
        self._lanes.setdefault(key, deque()).append(item)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._run(key), name=f"lane-{key}")

    async def _run(self, key: Hashable) -> None:
        lane = self._lanes[key]
        try:
            while lane and not self._closing:
                item = lane.popleft()
                try:
                    await self._handler(item)
                except Exception:
                    log.exception("error while handling an update")
                finally:
                    self._waiting -= 1
                    self._room.set()
        finally:
            self._workers.pop(key, None)
            if not lane:
                self._lanes.pop(key, None)

    async def close(self, grace: float) -> None:
        """Start no new items; give the ones running ``grace`` seconds, then cancel them."""
        self._closing = True
        workers = list(self._workers.values())
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                with contextlib.suppress(Exception):
                    await asyncio.wait(pending, timeout=0.5)
        self._lanes.clear()
