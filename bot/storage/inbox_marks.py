"""An inbox's ``done()`` marks, the same on both stores: batched in memory and written by one background flush within
``FLUSH_SECONDS``; while the database fails they are kept and retried every ``RETRY_SECONDS`` (one warning, then one
line once writing works again). Each store's inbox supplies the write itself (bot/storage/sqlite/inbox.py,
bot/storage/postgres/inbox.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.core.store import InboxUnavailable

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.01
RETRY_SECONDS = 5.0


class DoneMarks:
    """Update ids answered but not yet marked in the database. ``write(ids)`` marks them in one go or raises
    InboxUnavailable; ``is_open()`` says whether the inbox can write at all."""

    def __init__(self, write: Callable[[list[int]], Awaitable[None]], is_open: Callable[[], bool]) -> None:
        self._write = write
        self._is_open = is_open
        self._ids: list[int] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failing = False
        #: one flush at a time: a flush returns only once every mark made before it is written (the shared inbox
        #: lets a chat go right after; a mark still being written by the background flush would be read as pending)
        self._lock = asyncio.Lock()

    def add(self, update_id: int) -> None:
        self._ids.append(update_id)
        self._schedule(FLUSH_SECONDS)

    def _schedule(self, delay: float) -> None:
        if self._is_open() and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush_later(delay), name="inbox-flush")

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            while self._ids and self._is_open():  # marks made while a batch was written go in the next one
                await self.flush()
        except InboxUnavailable as exc:
            if not self._failing:
                log.warning("inbox: cannot mark updates answered (%s); retrying", exc)
            self._failing = True
            self._flusher = None
            self._schedule(RETRY_SECONDS)
        else:
            if self._failing:
                log.info("inbox: writing again")
            self._failing = False

    async def flush(self) -> None:
        """Write every mark made so far (kept for the next try when it raises InboxUnavailable)."""
        async with self._lock:
            ids, self._ids = self._ids, []
            if not ids or not self._is_open():
                self._ids = ids + self._ids
                return
            try:
                await self._write(ids)
            except InboxUnavailable:
                self._ids = ids + self._ids
                raise

    async def close(self) -> None:
        """Stop the background flush and write what is left, or say in one line that it may be answered again."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        except InboxUnavailable as exc:
            log.warning("inbox: could not record the last answered updates (%s); they may be answered again", exc)
