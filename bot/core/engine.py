"""The one place that decides: red flags, then commands, then the active triage step, then the FAQ, then fallback."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.core import payloads, replies, resilience
from bot.core.answers import FaqAnswers
from bot.core.commands import Commands
from bot.core.commands_parse import Command, parse_command
from bot.core.consent import CarryOn, ConsentGate, first
from bot.core.context import Context
from bot.core.followups import FollowupFlow
from bot.core.knowledge import Knowledge, KnowledgeRef
from bot.core.listen import overheard
from bot.core.messages import Escalation, IncomingMessage, Outcome, Reply
from bot.core.notices import Notices
from bot.core.payloads import Kind
from bot.core.ports import Clock, SystemClock
from bot.core.ratelimit import FloodControl, MemoryFloodControl, Verdict
from bot.core.red_flags import Assessment, RuleHit
from bot.core.safety import SafetyGate
from bot.core.settings import CoreSettings
from bot.core.store import STORE_ERRORS, Store
from bot.core.telemetry import NoTelemetry, Telemetry
from bot.core.text import MAX_MATCH_CHARS
from bot.core.triage_flow import TriageConversation

if TYPE_CHECKING:
    from bot.core.moderation import ModeratorDesk

log = logging.getLogger(__name__)


#: called when a follow-up is scheduled, so the scheduler can wake early
Waker = Callable[[], None]
#: moderators' /faq reload: returns a human summary of what happened
Reloader = Callable[[], Awaitable[str]]


@dataclass
class EngineOptions:
    """Switches for one-shot tools: ``ask`` and ``eval`` show no first-time notice and skip flood control."""

    first_notice: bool = True
    rate_limit: bool = True
    record_unanswered: bool = True


class Engine:
    """Platform-independent handling of one message at a time; safe to call from many tasks."""

    def __init__(
        self,
        knowledge: KnowledgeRef,
        store: Store,
        settings: CoreSettings | None = None,
        *,
        clock: Clock | None = None,
        options: EngineOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        flood: FloodControl | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.store = store
        self.settings = settings or CoreSettings()
        self.clock = clock or SystemClock()
        self.options = options or EngineOptions()
        self._monotonic = monotonic
        # flood control and the repeat guard: memory (the engine's clock, read at each call), or shared (bootstrap)
        self.flood: FloodControl = flood or MemoryFloodControl.of(self.settings, lambda: self._monotonic())
        self.safety = SafetyGate(monotonic)
        self.bookkeeper = resilience.Bookkeeper()
        self.notices = Notices(store)  # the first-message notice: recorded as shown when composed or when delivered
        # the handlers get what they use (store, clock, settings, each other), never the engine
        self.consent = ConsentGate(store, self.settings.privacy)
        self.followups = FollowupFlow(store, self.clock, self.settings.followups, self.settings.safety, self.consent)
        self.answers = FaqAnswers(store, self.settings, self.consent, record_unanswered=self.options.record_unanswered)
        self.triage = TriageConversation(store, self.settings.safety, self.consent, self.followups, self.answers)
        self.commands = Commands(store, self.clock, self.answers, self.triage, self.consent, self.followups)
        self.telemetry = NoTelemetry()

    # the parts bootstrap and the app wire in after construction
    @property
    def waker(self) -> Waker | None:
        """Called when a check-in is planned, so the scheduler wakes early."""
        return self.followups.waker

    @waker.setter
    def waker(self, waker: Waker | None) -> None:
        self.followups.waker = waker

    @property
    def reloader(self) -> Reloader | None:
        """The moderators' /faq reload."""
        return self.commands.reloader

    @reloader.setter
    def reloader(self, reloader: Reloader | None) -> None:
        self.commands.reloader = reloader

    @property
    def moderation(self) -> ModeratorDesk | None:
        """The moderators' review queue and in-chat editing (None: /faq review etc. unavailable)."""
        return self.commands.moderation

    @moderation.setter
    def moderation(self, desk: ModeratorDesk | None) -> None:
        self.commands.moderation = desk

    @property
    def telemetry(self) -> Telemetry:
        """The operations endpoint's counters (bot/ops), when it is on."""
        return self._telemetry

    @telemetry.setter
    def telemetry(self, telemetry: Telemetry) -> None:
        self._telemetry = self.answers.telemetry = telemetry

    # ------------------------------------------------------------------ entry points
    async def handle(self, msg: IncomingMessage) -> Outcome:
        """Handle a typed message, or a pressed button when ``msg.choice`` is set. Never raises."""
        k = self.knowledge.current  # one snapshot: a reload mid-message cannot mix versions
        started = time.perf_counter()
        try:
            if msg.choice is not None:
                outcome = await self.handle_choice(msg, k)
            else:
                outcome = await self.handle_text(msg, k)
        except Exception:
            log.exception("error while handling a message on %s", msg.platform)
            outcome = Outcome((Reply(replies.SORRY),), "error")
            if msg.listen_only:
                outcome = overheard(outcome)
        try:
            if not msg.listen_only:
                await self.store.increment("messages")
                await self.store.increment(outcome.kind)
                if outcome.escalation is not None:
                    await self.store.increment(f"escalation-{outcome.escalation.level}")
        except Exception:
            log.exception("could not update counters")
        self.telemetry.handled(msg, outcome, time.perf_counter() - started)
        return outcome

    async def handle_text(self, msg: IncomingMessage, k: Knowledge | None = None) -> Outcome:
        k = k or self.knowledge.current
        # the detector reads the first MAX_SCAN_CHARS (6,000), further than matching: a late symptom still counts
        assessment, failed = self.safety.assess(k, msg.text)
        outcome = await self._handle_assessed(msg, k, assessment)
        if msg.listen_only:
            outcome = overheard(outcome)
        if failed:  # fail closed: whatever else the message gets, it also gets the safety line
            outcome = outcome.plus(Reply(replies.safety_line(self.settings.safety)))
        return outcome

    async def _handle_assessed(self, msg: IncomingMessage, k: Knowledge, assessment: Assessment) -> Outcome:
        escalation = assessment.escalation
        text = msg.text[:MAX_MATCH_CHARS]
        if msg.listen_only:  # overheard: only the alarm tier acts, nothing public for a possible hit
            return await self._listen_only(msg, k, text, escalation, assessment.possible is not None)
        if escalation is not None:  # before any storage: the reply never waits for the database
            self.safety.take(_who(msg))
            return self._ask_after(
                msg, k, assessment.also_ask, await self._escalate(self._unloaded(msg, k), escalation)
            )
        verdict = await self._flood(_who(msg))
        if verdict != "ok":
            return Outcome((Reply(replies.SLOW_DOWN),) if verdict == "warn" else (), "throttled")
        stripped = text.strip()
        if self.safety.waiting(_who(msg)):
            answer = self.safety.typed_answer(stripped)
            if answer is not None:
                return await self._check_answer(self._unloaded(msg, k), answer, None)
        command = parse_command(stripped)
        possible = assessment.possible
        if possible is not None and (command is None or command.asks_a_question):
            sure = self.answers.sure(k, command.args if command else stripped) if possible.level == "urgent" else None
            if sure is not None:  # a plain question the FAQ answers: the urgent safety question follows the answer
                return self._ask_after(msg, k, possible, sure)
            safety, private = self.settings.safety, not msg.is_private
            reply, check = self.safety.question(k, _who(msg), possible, safety, msg.text, private=private)
            return Outcome((reply,), "safety-check", safety_check=check)
        return await self._route(await self._context(msg, k), stripped, command)

    def _ask_after(self, msg: IncomingMessage, k: Knowledge, hit: RuleHit | None, outcome: Outcome) -> Outcome:
        """``hit``'s safety question after an alarm or an FAQ answer (privately in a group; never when overheard)."""
        if hit is None or not outcome.replies:
            return outcome
        who, safety = _who(msg), self.settings.safety
        reply, check = self.safety.question(k, who, hit, safety, msg.text, private=not msg.is_private, answered=True)
        return replace(outcome.plus(reply), safety_check=check)

    def _unloaded(self, msg: IncomingMessage, k: Knowledge) -> Context:
        return Context(msg, resilience.transient_user(msg, self.clock.now()), k, degraded=True, loaded=False)

    async def _context(self, msg: IncomingMessage, k: Knowledge) -> Context:
        """The message with its user's row (read, never created: ``Context.stored_user``), a user with no row yet,
        or a stand-in (``degraded``) when storage does not answer in time."""
        try:
            user = await resilience.within(resilience.USER_BUDGET, self.store.find_user(msg.platform, msg.user_id))
        except STORE_ERRORS as exc:
            log.warning("storage unavailable, answering from memory: %s", exc or type(exc).__name__)
            return Context(msg, resilience.transient_user(msg, self.clock.now()), k, degraded=True)
        return Context(msg, user or resilience.unstored_user(msg, self.clock.now()), k)

    async def _route(self, ctx: Context, stripped: str, command: Command | None) -> Outcome:
        """Everything after the safety gate, bounded in time: storage trouble gives the memory-only answer.
        ``command`` is ``stripped`` parsed (None when it is not a command)."""
        if not ctx.degraded:
            reports = command is not None and command.name == "faq"  # a reload may take longer than the budget
            try:
                work = self._turn(ctx, self._route_stored(ctx, stripped, command))
                return await resilience.within(None if reports else resilience.STORAGE_BUDGET, work)
            except STORE_ERRORS as exc:
                log.warning("storage unavailable mid-message, answering from memory: %s", exc or type(exc).__name__)
                self.notices.dropped(ctx.msg)
                ctx = replace(ctx, prefix=[], degraded=True)
        return await self._route_degraded(ctx, stripped, command)

    async def _route_degraded(self, ctx: Context, stripped: str, command: Command | None) -> Outcome:
        """Storage is down: FAQ answers and commands that need no stored data; the rest says it is unavailable."""
        if self.options.first_notice and self.notices.first_offline(ctx.msg):
            ctx.prefix.append(Reply(replies.first_notice(self.settings.safety), private=ctx.private))
        if command is not None:
            if not command.echoable:
                return self._with_prefix(ctx, Outcome((Reply(replies.unknown_command(ctx.k, command)),), "command"))
            if command.name not in resilience.STORED_COMMANDS:
                try:
                    return self._with_prefix(ctx, await self.commands.dispatch(ctx, command))
                except STORE_ERRORS as exc:
                    log.warning("storage unavailable for /%s: %s", command.name, exc or type(exc).__name__)
            return self._with_prefix(ctx, Outcome((Reply(resilience.UNAVAILABLE, private=ctx.private),), "unavailable"))
        return self._with_prefix(ctx, await self.answers.answer(ctx, stripped))

    async def _route_stored(self, ctx: Context, stripped: str, command: Command | None) -> Outcome:
        """Everything after the safety gate: notice, commands, the triage step or check-in answer, the FAQ."""
        msg, k = ctx.msg, ctx.k
        await self._notice(ctx)
        if command is not None:
            if not command.echoable:
                return self._with_prefix(ctx, Outcome((Reply(replies.unknown_command(k, command)),), "command"))
            return self._with_prefix(ctx, await self.commands.dispatch(ctx, command))
        if msg.is_private:
            state, awaiting = await self.consent.conversation(ctx)  # memory after a "no" to storing
            if state is not None and state.flow_id == k.triage.id:
                return self._with_prefix(ctx, await self.triage.typed(ctx, state, stripped))
            if awaiting is not None:
                answer = self.followups.parse_answer(stripped)
                if answer is not None:
                    return self._with_prefix(ctx, await self.followups.answer(ctx, awaiting, answer))
        return self._with_prefix(ctx, await self.answers.answer(ctx, stripped))

    async def _check_answer(self, ctx: Context, yes: bool, category: str | None) -> Outcome:
        """The answer to a safety question: yes escalates that category, no carries on with the original message."""
        pending = self.safety.take(_who(ctx.msg))
        if yes:
            cid = category or (pending.check.category if pending else None)
            cat = ctx.k.red_flags.categories.get(cid or "")
            if cat is None:
                return Outcome((Reply(replies.EXPIRED),), "expired")
            return await self._escalate(ctx, Escalation(cat.level, cat.id))  # writes nothing before the reply
        if pending is None:
            return Outcome((Reply(replies.SAFETY_CHECK_ASK_AGAIN),), "fallback")
        if pending.answered:  # the message had its alarm or answer already: nothing to carry on with
            return Outcome((Reply(replies.SAFETY_CHECK_ANSWERED_NO, private=ctx.private),), "safety-check")
        if not ctx.loaded:
            ctx = await self._context(ctx.msg, ctx.k)
        carried_text = pending.text[:MAX_MATCH_CHARS].strip()
        carried = await self._route(ctx, carried_text, parse_command(carried_text))
        return carried.plus(Reply(replies.SAFETY_CHECK_CARRY_ON, private=ctx.private), first=True)

    async def handle_choice(self, msg: IncomingMessage, k: Knowledge | None = None) -> Outcome:
        k = k or self.knowledge.current
        verdict = await self._flood(_who(msg))
        if verdict != "ok":
            return Outcome((Reply(replies.SLOW_DOWN),) if verdict == "warn" else (), "throttled")
        payload = payloads.decode(msg.choice)
        if payload is None or not k.still_has(payload):  # forged, stale, or not ours at all
            return Outcome((Reply(replies.EXPIRED),), "expired")
        kind, args = payload.kind, payload.args
        if kind is Kind.CHECK:  # a safety answer: "yes" escalates without waiting for storage
            yes = args[0] == "yes"
            return await self._check_answer(self._unloaded(msg, k), yes, args[1] if yes else None)
        ctx = await self._context(msg, k)
        if ctx.degraded and kind in resilience.STORED_CHOICES:
            return Outcome((Reply(resilience.UNAVAILABLE, private=ctx.private),), "unavailable")
        if kind is Kind.COMMAND:
            command = Command(args[0], " ".join(args[1:]))
            return await self._route(ctx, command.text, command)
        try:
            return await self._turn(ctx, self._stored_choice(ctx, payload))
        except STORE_ERRORS as exc:
            log.warning("storage unavailable for a button: %s", exc or type(exc).__name__)
            return Outcome((Reply(resilience.UNAVAILABLE, private=ctx.private),), "unavailable")

    async def _stored_choice(self, ctx: Context, payload: payloads.Payload) -> Outcome:
        k, args = ctx.k, payload.args
        match payload.kind:
            case Kind.FAQ:
                return self.answers.entry(k, args[0])
            case Kind.TRIAGE:
                return await self.triage.pressed(ctx, args)
            case Kind.FOLLOWUP:
                return await self.followups.choice(ctx, args)
            case Kind.CONSENT:
                answered = await self.consent.choice(ctx, args)
                if isinstance(answered, CarryOn):
                    return first(answered.note, await self.triage.after_consent(ctx, answered.action))
                return answered
            case Kind.MODERATION:
                if self.moderation is None:
                    return Outcome((Reply(replies.EXPIRED),), "expired")
                return await self.moderation.choice(ctx.msg, args)
            case _:
                return await self.commands.forget_choice(ctx, args[0])

    def _limited(self) -> bool:
        return self.options.rate_limit and self.settings.rate_limit.enabled

    async def _flood(self, who: str) -> Verdict:
        """Flood control's verdict on one more message from ``who`` (always "ok" when it is off)."""
        if not self._limited():
            return "ok"
        return await self.flood.check(who)

    async def _turn(self, ctx: Context, work: Awaitable[Outcome]) -> Outcome:
        """``work`` as the user's turn: one message at a time reads and writes their state, in every process."""
        async with self.store.serialized(ctx.msg.platform, ctx.msg.user_id):
            return await work

    # ------------------------------------------------------------------ pieces
    async def _listen_only(
        self, msg: IncomingMessage, k: Knowledge, text: str, escalation: Escalation | None, possible: bool
    ) -> Outcome:
        if escalation is not None:
            return await self._escalate(self._unloaded(msg, k), escalation)
        answer = self.answers.overheard(k, text, possible=possible)
        if answer is None:
            return Outcome((), "silent")
        # overheard chatter is never told to slow down: over the limit the bot just stays quiet
        return answer if await self._flood(_who(msg)) == "ok" else Outcome((), "throttled")

    async def _escalate(self, ctx: Context, escalation: Escalation) -> Outcome:
        """A red flag is never silenced by flood control, but the same escalation goes out at most once per
        ``safety.repeat_escalation_seconds`` per user and category.

        Within that window a repeat gets a one-line reminder, and reminders count against the user's token bucket
        like any message (the "slow down" turn is a reminder too, then silence). A first escalation always goes out
        and spends one token per reply it sends, so 1,000 identical red-flag messages in a second still get at most
        ``burst + 1`` replies. Only the escalation actually sent is logged (repeats add no rows).
        """
        safety = self.settings.safety
        who = _who(ctx.msg)
        category = ctx.k.red_flags.categories.get(escalation.category)
        header, footer = (category.header, category.footer) if category is not None else (True, True)
        # memory, or the database within a quarter of a second (else memory): the reply never waits longer
        if await self.flood.is_repeat(who, escalation.category):
            await self._record_escalation(ctx, escalation, log_it=False)
            if await self._flood(who) == "drop":
                return Outcome((), "escalation", escalation=escalation)
            reminder = Reply(replies.escalation_reminder(escalation, safety, header=header), escalation=escalation)
            return Outcome((reminder,), "escalation", escalation=escalation)
        message = category.message if category is not None else ""
        if self.consent.stop_check(ctx.msg) | await self._record_escalation(ctx, escalation, log_it=True):
            message += "\n\n(I've stopped the back-pain check so you can deal with this first.)"
        full = replies.escalation_text(message, escalation, safety, header=header, footer=footer)
        if ctx.msg.is_private:
            out: tuple[Reply, ...] = (Reply(full, escalation=escalation),)
        else:
            public = replies.escalation_public(escalation, safety, ctx.msg.display_name, header=header)
            out = (Reply(public, escalation=escalation), Reply(full, escalation=escalation, private=True))
        if self._limited():
            await self.flood.take(who, len(out))
        return Outcome(out, "escalation", escalation=escalation)

    async def _record_escalation(self, ctx: Context, escalation: Escalation, *, log_it: bool) -> bool:
        """The escalation's bookkeeping after the reply (see ``resilience.record_escalation``)."""
        user = None if ctx.degraded or not ctx.user.stored else ctx.user
        return await resilience.record_escalation(self.bookkeeper, self.store, ctx.msg, user, escalation, log_it=log_it)

    async def _notice(self, ctx: Context) -> None:
        if self.options.first_notice and not ctx.user.notice_shown:
            text = replies.first_notice(self.settings.safety)
            ctx.prefix.extend(filter(None, [await self.notices.first(ctx.msg, ctx.user, text, ctx.private)]))

    @staticmethod
    def _with_prefix(ctx: Context, outcome: Outcome) -> Outcome:
        if not ctx.prefix:
            return outcome
        return replace(outcome, replies=(*ctx.prefix, *outcome.replies))


def _who(msg: IncomingMessage) -> str:
    return f"{msg.platform}:{msg.user_id}"
