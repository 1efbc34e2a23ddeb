"""Follow-up check-ins: offering them, the scheduler that sends them, and acting on the answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.core import payloads
from bot.core.messages import ChatRef, Choice, Outcome, Reply
from bot.core.payloads import CHECKIN_ANSWERS, CheckinAnswer
from bot.core.placeholders import fill
from bot.core.ports import Adapter, Clock, DeliveryError
from bot.core.store import Claim, Store, StoreUnavailable, new_owner
from bot.core.telemetry import NoTelemetry, Telemetry
from bot.core.text import normalize

if TYPE_CHECKING:
    from bot.core.consent import ConsentGate
    from bot.core.context import Context
    from bot.core.settings import FollowupSettings, SafetySettings
    from bot.core.triage import TriageOutcome

log = logging.getLogger(__name__)

CHECKIN_TEXT = "Hi, it's runbot checking in 👋 How is your back today?"
_WORDS: dict[CheckinAnswer, set[str]] = {
    "better": {"better", "good", "great", "fine", "improving", "improved", "much better", "loads better", "ok", "okay"},
    "same": {"same", "no change", "the same", "about the same", "meh", "similar", "unchanged"},
    "worse": {"worse", "bad", "awful", "terrible", "getting worse", "much worse"},
}


def checkin_reply(followup_id: int) -> Reply:
    choices = tuple(Choice(a.capitalize(), payloads.checkin_answer(followup_id, a)) for a in CHECKIN_ANSWERS)
    return Reply(CHECKIN_TEXT, choices=choices, private=True)


def humanize_delta(delta: timedelta) -> str:
    """'in 3 days', 'in 5 hours', 'now'."""
    seconds = delta.total_seconds()
    if seconds <= 60:
        return "now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size)
            return f"in {n} {unit}{'s' if n != 1 else ''}"
    return "now"


class FollowupFlow:
    """The engine's side of follow-ups: offers, answers, and the user's consent."""

    def __init__(
        self, store: Store, clock: Clock, settings: FollowupSettings, safety: SafetySettings, consent: ConsentGate
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.safety = safety
        self.consent = consent
        #: called when a check-in is planned or re-planned, so the scheduler wakes early (bootstrap sets it)
        self.waker: Callable[[], None] | None = None

    def when(self, due: datetime) -> str:
        return humanize_delta(due - self.clock.now())

    async def offer(self, ctx: Context, outcome: TriageOutcome) -> Reply | None:
        if not outcome.followup or not self.settings.enabled or self.consent.declined(ctx.msg):
            return None  # after a "no" to storing, no check-ins are offered (the "no" reply said so)
        user = await self.store.user_by_id(ctx.user.id) or ctx.user
        if not user.followups_enabled:
            return None
        days = self.settings.first_after_days
        text = f"Would you like me to check in with you in {days:g} days to ask how your back is doing?"
        choices = (Choice("Yes, check in", payloads.followup_offer(outcome.id)),
                   Choice("No thanks", payloads.followup_decline()))
        return Reply(text, choices=choices, private=ctx.private)

    @staticmethod
    def parse_answer(text: str) -> CheckinAnswer | None:
        norm = normalize(text)
        for answer, words in _WORDS.items():
            if norm in words:
                return answer
        return None

    async def choice(self, ctx: Context, args: tuple[str, ...]) -> Outcome:
        """A pressed follow-up button, ``args`` as ``payloads.decode`` checked them: ("no",) or ("yes", topic) for
        the offer, (check-in id, answer) for a check-in."""
        if args == ("no",):
            text = "No problem. You can always ask me again or run /triage."
            return Outcome((Reply(text, private=ctx.private),), "followup")
        first, second = args
        if first == "yes":
            return await self.schedule(ctx, second)
        return await self.answer(ctx, int(first), second)  # type: ignore[arg-type]

    async def schedule(self, ctx: Context, topic: str) -> Outcome:
        store = self.store
        user = await store.user_by_id(ctx.user.id) or ctx.user
        if not self.settings.enabled or not user.followups_enabled:
            text = "Check-ins are turned off. Send /followups on if you'd like them."
            return Outcome((Reply(text, private=ctx.private),), "followup")
        from bot.core.consent import NO_CHECKINS

        if self.consent.declined(ctx.msg):
            return Outcome((Reply(NO_CHECKINS, private=ctx.private),), "followup")
        asked = await self.consent.gate(ctx, "fu")  # a check-in is stored: current consent first
        if asked is not None:
            return asked
        due = self.clock.now() + timedelta(days=self.settings.first_after_days)
        chat = ctx.msg.chat_id if ctx.msg.is_private else ctx.msg.user_id
        await store.add_followup(user, chat, topic, due)
        if self.waker is not None:
            self.waker()
        text = f"Great — I'll check in {self.when(due)}. Send /followups off any time to stop."
        return Outcome((Reply(text, private=ctx.private),), "followup")

    async def answer(self, ctx: Context, followup_id: int, answer: CheckinAnswer) -> Outcome:
        from bot.core.replies import DISCLAIMER, EXPIRED

        store = self.store
        f = await store.get_followup(followup_id)
        if f is None or f.user_id != ctx.user.id or f.state != "awaiting":
            return Outcome((Reply(EXPIRED, private=ctx.private),), "expired")
        now = self.clock.now()
        # the answer is health data: stored only under consent to the current text; otherwise the advice is given,
        # nothing is stored, the check-ins stop, and the consent question says how to have them again
        consented = await self.consent.is_current(ctx)
        more = consented and f.checkins < self.settings.max_checkins
        next_due = now + timedelta(days=self.settings.interval_days)
        choices: tuple[Choice, ...] = ()
        if answer == "better":
            if consented:
                await store.update_followup(f.id, state="done")
            text = (
                "That's great to hear! To help keep it that way: build up mileage gradually, keep up core and glute "
                "strength work, and swap worn-out shoes."
            )
            tips = [ctx.k.entries.get("prevention"), ctx.k.entries.get("core-exercises")]
            choices = tuple(Choice(e.title, payloads.faq(e.id)) for e in tips if e is not None)
        elif answer == "same":
            same = f.same_count + 1
            text = (
                "Thanks for letting me know. Keep moving gently — easy walks, light activity and your exercises — "
                "and ease back into running as pain allows."
            )
            if same >= 2:
                text += (
                    " It's been about two weeks without improvement, so it's worth seeing a physiotherapist or your "
                    "doctor for an assessment."
                )
            if more:
                await store.update_followup(f.id, state="pending", same_count=same, due_at=next_due, attempts=0)
                text += f" I'll check in again {humanize_delta(next_due - now)}."
            elif consented:
                await store.update_followup(f.id, state="done", same_count=same)
        else:
            text = fill(
                "I'm sorry it's getting worse. Please see a physiotherapist or your doctor for an assessment. If you "
                "notice numbness around your genitals or bottom, problems peeing or pooing, or weakness in your legs, "
                "call {emergency_number} or go to {emergency_department} now.",
                self.safety,
            )
            if more:
                await store.update_followup(f.id, state="pending", due_at=next_due, attempts=0)
                text += f" I'll check in again {humanize_delta(next_due - now)} (/followups off stops this)."
            elif consented:
                await store.update_followup(f.id, state="done")
        advice = Reply(f"{text}\n\n{DISCLAIMER}", choices=choices, private=ctx.private)
        if not consented:
            await store.cancel_followups(ctx.user)
            ask = self.consent.question(ctx, "none", changed=True)
            stopped = Reply(CHECKINS_STOPPED, private=ctx.private)
            return Outcome((advice, stopped, *ask.replies), "consent")
        if self.waker is not None:
            self.waker()
        return Outcome((advice,), "followup")


CHECKINS_STOPPED = (
    "I've stopped your check-ins and stored nothing from this answer: what I tell you about storing your data has "
    "changed (or you haven't agreed to it yet). If you agree below, check-ins can be offered again after your next "
    "back-pain check (/triage)."
)


class Scheduler:
    """One task that sleeps until the earliest due check-in; ``wake()`` when a sooner one is added.

    Any number of processes may run it on one database: rows are claimed with a lease (``Store.claim_due``), so
    each check-in is sent once; a claimed row is resent only after its lease expired (or its owner process died).
    """

    #: how long a claim holds a row; a batch is sent well within it (the outbox gives up on longer flood waits)
    LEASE = timedelta(minutes=5)
    BATCH = 20

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        settings: FollowupSettings,
        clock: Clock,
        *,
        max_sleep: float = 3600.0,
    ) -> None:
        self.store = store
        self.adapters = dict(adapters)
        self.settings = settings
        self.clock = clock
        self.max_sleep = max_sleep
        self.owner = new_owner()
        self.lease = self.LEASE
        self._wake = asyncio.Event()
        self._stopping = False
        self.sleeps: list[float] = []  # how long each wait was planned for (tests and operators read it)
        #: the heartbeat (time.monotonic() when the loop last finished a round, None before the first) and the wait
        #: it then planned: /healthz calls the scheduler stuck when a round is much later than planned
        self.beat: float | None = None
        self.planned = 0.0
        self.telemetry: Telemetry = NoTelemetry()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Send what is due, then sleep until the next due time (or a wake-up); until stop()."""
        while not self._stopping:
            self._wake.clear()  # before looking: a wake() during the look-up is not lost
            try:
                await self.run_due()
                delay = await self.seconds_until_next()
            except StoreUnavailable as exc:  # a locked, full or missing database: one line, not a traceback
                log.warning("follow-ups: the database is unavailable (%s); retrying in a minute", exc)
                delay = 60.0
            except Exception:
                log.exception("follow-up scheduler error; retrying in a minute")
                delay = 60.0
            self.sleeps.append(delay)
            self.beat, self.planned = time.monotonic(), delay
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def seconds_until_next(self) -> float:
        due = await self.store.next_claimable(set(self.adapters))
        if due is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (due - self.clock.now()).total_seconds()))

    async def run_due(self) -> int:
        """Claim and send every check-in that is due now (for the platforms running here); return how many were
        delivered. In due order; each row is checked again just before its send (a check-in cancelled meanwhile
        by /followups off or /forget is not sent)."""
        sent = 0
        while not self._stopping:
            self.beat, self.planned = time.monotonic(), 0.0  # a long run of batches is progress, not a hang
            batch = await self.store.claim_due(
                self.owner, self.clock.now(), self.lease, platforms=set(self.adapters), limit=self.BATCH
            )
            if not batch:
                return sent
            for claim in batch:
                if self._stopping:
                    break  # the rest of the batch is claimed until its lease expires, then sent (here or elsewhere)
                sent += await self._deliver(claim)
        return sent

    async def _deliver(self, claim: Claim) -> int:
        f = claim.followup
        now = self.clock.now()
        if now - f.due_at > timedelta(days=self.settings.drop_overdue_days):
            log.warning("dropping follow-up %s: %s overdue", f.id, now - f.due_at)
            await self.store.release_claim(claim, self.owner, now, state="dropped", last_error="too far overdue")
            return 0
        if not await self.store.claim_held(claim, self.owner):  # cancelled or answered meanwhile
            return 0
        if await self.store.already_sent(claim.send_key):  # delivered before a crash: record it, don't resend
            await self.store.complete_claim(claim, self.owner, now)
            return 0
        adapter = self.adapters.get(f.platform)
        if adapter is None:  # the platform stopped meanwhile: give it back
            await self.store.release_claim(claim, self.owner, now, state="pending")
            return 0
        try:
            await adapter.send(ChatRef(f.platform, f.platform_user_id, f.chat_id), [checkin_reply(f.id)])
        except DeliveryError as exc:
            return await self._failed(claim, str(exc), permanent=exc.permanent)
        except Exception as exc:
            log.exception("follow-up %s: unexpected send error", f.id)
            return await self._failed(claim, type(exc).__name__, permanent=False)
        if not await self.store.complete_claim(claim, self.owner, self.clock.now()):
            log.warning("follow-up %s was sent but its claim had passed to another process", f.id)
        log.info("follow-up %s delivered on %s", f.id, f.platform)
        return 1

    async def _failed(self, claim: Claim, error: str, *, permanent: bool) -> int:
        f = claim.followup
        attempts = f.attempts + 1
        now = self.clock.now()
        if permanent or attempts >= self.settings.max_attempts:
            log.warning("follow-up %s given up after %d attempt(s): %s", f.id, attempts, error)
            self.telemetry.send_failed(f.platform, permanent=permanent)
            await self.store.release_claim(claim, self.owner, now, state="failed", attempts=attempts,
                                 last_error=error[:200])
            if permanent:
                user = await self.store.user_by_id(f.user_id)
                if user is not None:
                    await self.store.cancel_followups(user)
            return 0
        self.telemetry.send_retried(f.platform, "followup")
        backoff = self.settings.retry_backoff_seconds
        delay = backoff[min(attempts - 1, len(backoff) - 1)] if backoff else 60
        await self.store.release_claim(
            claim, self.owner, now, state="pending", attempts=attempts, last_error=error[:200],
            due_at=now + timedelta(seconds=delay),
        )
        return 0
