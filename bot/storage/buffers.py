"""Counters and unanswered questions: buffered in memory, written in batches, never making a reply wait.

Shared by both stores; each writes a batch with its own upserts (``_write_buffers``), so several processes add to
the same rows safely.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.store import StoreUnavailable
from bot.storage.common import to_db

log = logging.getLogger(__name__)

#: buffered counters and unanswered questions are written once this many are waiting
FLUSH_EVERY = 256

Stats = dict[tuple[str, str], int]
#: (masked question, asker's user id or 0) -> (count, first seen, last seen) as to_db text
Unanswered = dict[tuple[str, int], tuple[int, str, str]]


class WriteBuffers:
    """Part of a store: daily counters and the unanswered-questions log (per asker, already masked)."""

    _pending_stats: Stats
    _pending_unanswered: Unanswered
    _flushing: asyncio.Task[None] | None
    #: the driver's errors a failed batch can raise (and StoreUnavailable): the batch is kept for the next try
    _write_errors: tuple[type[BaseException], ...] = (StoreUnavailable,)

    if TYPE_CHECKING:

        def _now(self) -> datetime: ...

        def describe(self) -> str: ...

    async def _before_flush(self) -> None:
        """A check the store makes before every flush (SQLite: is the file still there)."""

    async def _write_buffers(self, stats: Stats, unanswered: Unanswered) -> None:
        raise NotImplementedError

    async def record_unanswered(self, normalized: str, user_id: int | None = None) -> None:
        """Count an unmatched question (already masked) per asker, so /forget and /mydata find it; batched."""
        if not normalized:
            return
        now = to_db(self._now())
        key = (normalized, user_id or 0)
        count, first, _ = self._pending_unanswered.get(key, (0, now, now))
        self._pending_unanswered[key] = (count + 1, first, now)
        await self._maybe_flush()

    async def increment(self, kind: str, n: int = 1) -> None:
        """Bump a daily counter (messages, answered, did-you-mean, fallback, escalation-...)."""
        key = (self._now().strftime("%Y-%m-%d"), kind)
        self._pending_stats[key] = self._pending_stats.get(key, 0) + n
        await self._maybe_flush()

    async def _maybe_flush(self) -> None:
        """A full buffer is written by a background task: counting never makes a reply wait for the disk."""
        if len(self._pending_stats) + len(self._pending_unanswered) < FLUSH_EVERY:
            return
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_logged(), name="store-flush")

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except self._write_errors as exc:
            log.warning("could not write buffered counters (kept for the next try): %s", exc)

    async def settled(self) -> None:
        """Wait for a background flush started by a full buffer (tests, shutdown)."""
        if self._flushing is not None:
            await asyncio.wait({self._flushing})

    async def flush(self) -> None:
        """Write buffered counters and unanswered questions in one transaction (what fails is kept for the next try)."""
        await self._before_flush()
        if not self._pending_stats and not self._pending_unanswered:
            return
        stats, self._pending_stats = self._pending_stats, {}
        unanswered, self._pending_unanswered = self._pending_unanswered, {}
        try:
            await self._write_buffers(stats, unanswered)
        except self._write_errors as exc:  # best effort: kept for the next flush, logged, never raised to a reply
            self._restore_buffers(stats, unanswered)
            log.warning("could not write counters and unanswered questions to the %s (kept for later): %s",
                        self.describe(), exc)
        except BaseException:
            self._restore_buffers(stats, unanswered)
            raise

    def _restore_buffers(
        self, stats: Stats, unanswered: Unanswered
    ) -> None:
        """Put back what could not be written (disk full, locked), bounded so an outage cannot eat the memory."""
        for key, n in stats.items():
            self._pending_stats[key] = self._pending_stats.get(key, 0) + n
        for key, (n, first, last) in unanswered.items():
            if key not in self._pending_unanswered and len(self._pending_unanswered) >= 4 * FLUSH_EVERY:
                continue  # dropped: a question log is not worth unbounded memory
            had = self._pending_unanswered.get(key)
            self._pending_unanswered[key] = (n + had[0], min(first, had[1]), max(last, had[2])) if had else (
                n, first, last)

