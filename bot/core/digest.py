"""The weekly digest for the moderators' channel and chat: what the bot did in the last 7 days, the new unanswered
question groups and the escalations by level. Counts and question wording only: nothing that points at a person.

One task sleeps until the configured weekday and hour (UTC); the week is claimed in the database first, so with
several processes (or a restart right after sending) each week's digest goes out once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.ports import Clock
from bot.core.reports import group_unanswered, redact

log = logging.getLogger(__name__)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: a digest whose time passed while the bot was down is still sent this long afterwards, then skipped
GRACE = timedelta(hours=12)
#: the longest single sleep: the clock is looked at again at least this often
MAX_SLEEP = 3600.0
TOP_GROUPS = 5
LINES = (
    ("messages", "messages handled"),
    ("answer", "answered from the FAQ"),
    ("did-you-mean", "did-you-mean offered"),
    ("fallback", "not answered"),
    ("escalation-emergency", "emergency escalations"),
    ("escalation-urgent", "urgent escalations"),
)


class DigestSource(Protocol):
    async def stats(self, since: datetime | None = None) -> dict[str, int]: ...


class DigestLog(Protocol):
    async def claim_digest(self, week: str, at: datetime) -> bool: ...

    async def new_unanswered(self, since: datetime, limit: int = 500) -> list[dict[str, Any]]: ...


def last_slot(now: datetime, day: str, hour: int) -> datetime:
    """The latest digest time (weekday ``day`` at ``hour``:00 UTC) at or before ``now``."""
    start = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    start -= timedelta(days=(now.weekday() - WEEKDAYS.index(day)) % 7)
    return start if start <= now else start - timedelta(days=7)


def week_key(slot: datetime) -> str:
    year, week, _ = slot.isocalendar()
    return f"{year}-W{week:02d}"


async def compose(source: DigestSource, log_: DigestLog, now: datetime) -> str:
    since = now - timedelta(days=7)
    counts = await source.stats(since=since)
    lines = [f"📋 Weekly digest, {since:%Y-%m-%d} to {now:%Y-%m-%d} (counts only):"]
    lines += [f"{counts.get(kind, 0):>6}  {label}" for kind, label in LINES]
    rows = await log_.new_unanswered(since)
    groups = await asyncio.to_thread(group_unanswered, rows, TOP_GROUPS)  # off the loop: a long week's log
    if groups:
        lines.append("New questions I couldn't answer (times asked, question):")
        for g in groups:
            similar = f" (+{g['variants'] - 1} similar)" if g["variants"] > 1 else ""
            lines.append(f"{g['count']:>6}  {redact(g['text'])[:120]}{similar}")
        lines.append("/faq review maps them to entries.")
    else:
        lines.append("No new unanswered questions this week.")
    return "\n".join(lines)


class WeeklyDigest:
    """Sends the digest through ``notify`` (every platform's moderators' channel or chat) once a week."""

    def __init__(
        self, source: DigestSource, log_: DigestLog, notify: Callable[[str], Awaitable[object]], clock: Clock,
        *, day: str = "monday", hour: int = 9,
    ) -> None:
        self.source = source
        self.log = log_
        self.notify = notify
        self.clock = clock
        self.day = day
        self.hour = hour

    async def send_if_due(self) -> bool:
        """Send this week's digest when its time has come (within GRACE) and no process has sent it yet."""
        now = self.clock.now()
        slot = last_slot(now, self.day, self.hour)
        if now - slot > GRACE:
            return False
        text = await compose(self.source, self.log, now)
        if not await self.log.claim_digest(week_key(slot), now):
            return False
        await self.notify(text)
        log.info("weekly digest %s sent", week_key(slot))
        return True

    async def run(self) -> None:
        """Forever (cancel to stop): sleep until the next digest time, send it; errors are logged, never fatal."""
        while True:
            try:
                await self.send_if_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a locked or full database: tried again at the next wake-up
                log.warning("weekly digest: could not be sent: %s", exc or type(exc).__name__)
            now = self.clock.now()
            due = last_slot(now, self.day, self.hour) + timedelta(days=7)
            await asyncio.sleep(max(1.0, min(MAX_SLEEP, (due - now).total_seconds())))
