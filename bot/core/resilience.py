"""Safety first, storage second: bookkeeping after the reply, and what the bot can still do when storage is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from bot.core.messages import Escalation, IncomingMessage
from bot.core.payloads import Kind
from bot.core.store import STORE_ERRORS, Store, User

log = logging.getLogger(__name__)

T = TypeVar("T")

#: how long loading a user's row may take before the message is answered from memory alone (seconds). A lock or a
#: full disk fails much sooner (SQLite's 1 s busy timeout, or at once); these bound a hung or badly backed-up database
#: and are generous so that a merely busy one (hundreds of chats at once) is not mistaken for a broken one
USER_BUDGET = 2.5
#: how long everything after the safety gate may wait for storage before the memory-only answer is given
STORAGE_BUDGET = 4.0
#: an escalation reply waits at most this long for its bookkeeping's first attempt (to say "I've stopped the back-pain
#: check")
NOTE_WAIT = 0.25
#: bookkeeping after a reply: attempts, each bounded, with a short pause between them; then dropped with a log line
ATTEMPTS = 5
ATTEMPT_TIMEOUT = 5.0
RETRY_PAUSE = 0.5
#: pending bookkeeping tasks at most (a long outage must not pile up work without bound)
MAX_PENDING = 1000
MAX_OFFLINE_NOTICES = 10_000


async def within(seconds: float | None, work: Awaitable[T]) -> T:
    """``work`` given at most ``seconds`` (None: no limit), raising TimeoutError after that. Runs in the caller's task:
    ``asyncio.wait_for`` on Python 3.11 starts a task per call, and two per message were a tenth of its time."""
    if seconds is None:
        return await work
    async with asyncio.timeout(seconds):
        return await work


UNAVAILABLE = (
    "Sorry, check-ins, the back-pain check, /mydata and /forget are temporarily unavailable (a storage problem on "
    "my side). Questions and safety advice still work. Please try again in a little while."
)
#: commands that need stored data: answered with UNAVAILABLE while storage is down
STORED_COMMANDS = frozenset({"triage", "check", "cancel", "stop", "followups", "mydata", "forget", "consent"})
#: button kinds that need stored data
STORED_CHOICES = frozenset({Kind.TRIAGE, Kind.FOLLOWUP, Kind.FORGET})


class Bookkeeper:
    """Storage work that follows a reply: bounded, retried a few times, then dropped with a log line. Never raises."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.failed = 0
        self.dropped = 0

    def spawn(
        self, what: str, work: Callable[[], Awaitable[T]], *, tried: asyncio.Event | None = None
    ) -> asyncio.Task[T | None] | None:
        """Run ``work`` in the background; ``tried`` is set once its first attempt has succeeded or failed."""
        if len(self._tasks) >= MAX_PENDING:
            self.dropped += 1
            log.warning("%s: dropped (%d storage tasks already waiting)", what, len(self._tasks))
            return None
        task: asyncio.Task[T | None] = asyncio.create_task(self._run(what, work, tried), name=f"bookkeeping: {what}")
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]
        return task

    async def _run(self, what: str, work: Callable[[], Awaitable[T]], tried: asyncio.Event | None) -> T | None:
        last: BaseException | None = None
        try:
            for attempt in range(ATTEMPTS):
                try:
                    return await asyncio.wait_for(work(), ATTEMPT_TIMEOUT)
                except STORE_ERRORS as exc:
                    last = exc
                except Exception:
                    log.exception("%s failed", what)
                    self.failed += 1
                    return None
                if tried is not None:
                    tried.set()  # failed: the retries happen after the reply
                if attempt < ATTEMPTS - 1:
                    await asyncio.sleep(RETRY_PAUSE * 2**attempt)
            self.failed += 1
            log.warning("%s: storage unavailable after %d attempts (%s); the reply went out without it", what,
                        ATTEMPTS, last)
            return None
        finally:
            if tried is not None:
                tried.set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, seconds: float) -> int:
        """Give pending bookkeeping up to ``seconds`` (shutdown, one-shot commands), then cancel what is left (the
        store is about to close); returns how many were dropped."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)
        left = list(self._tasks)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=1.0)
        return len(left)


class OfflineNotices:
    """Who got the first-time notice while storage was down (bounded), so it is shown once, not every message."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, who: str) -> bool:
        if who in self._seen:
            return False
        self._seen[who] = None
        if len(self._seen) > MAX_OFFLINE_NOTICES:
            self._seen.popitem(last=False)
        return True


async def record_escalation(
    bookkeeper: Bookkeeper, store: Store, msg: IncomingMessage, user: User | None, escalation: Escalation, *,
    log_it: bool,
) -> bool:
    """The bookkeeping of an escalation (user row, end of a triage in progress, the log row) as a background task.

    The reply waits for its first attempt, at most ``NOTE_WAIT`` seconds (a healthy database takes milliseconds): full,
    locked or gone storage never delays it longer, one that fails at once not at all; a failure is retried in the
    background, then logged, never shown. ``user`` None: look the row up in the task (a red flag never creates one).
    True when a triage in progress was stopped in time to say so.
    """

    async def work() -> bool:
        row = user or await store.find_user(msg.platform, msg.user_id)  # never created for a red flag (issue 16)
        stopped = await store.clear_triage(row) if row is not None else False
        if log_it:  # linked to the user only with their consent (issue 16), else level, category and time only
            await log_escalation(store, row, escalation.level, escalation.category)
        return stopped

    tried = asyncio.Event()
    task = bookkeeper.spawn(f"escalation bookkeeping ({escalation.category})", work, tried=tried)
    if task is None:
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tried.wait(), NOTE_WAIT)
    return task.done() and not task.cancelled() and bool(task.result())


async def log_escalation(store: Store, user: User | None, level: str, category: str) -> None:
    """A safety-log row: linked to the user only with their consent (issue 16), else level, category and time."""
    linked = user is not None and user.stored and await store.consent_of(user) is not None
    await store.log_escalation(user if linked else None, level, category)


def transient_user(msg: IncomingMessage, now: datetime) -> User:
    """A stand-in for a user whose row cannot be read: id 0 is never written anywhere."""
    return User(0, msg.platform, msg.user_id, now, notice_shown=False, followups_enabled=False)


def unstored_user(msg: IncomingMessage, now: datetime) -> User:
    """A user with no row yet (nothing about them is stored): id 0 with the defaults a new row would have."""
    return User(0, msg.platform, msg.user_id, now, notice_shown=False, followups_enabled=True)
