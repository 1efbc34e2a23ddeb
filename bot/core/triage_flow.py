"""The back-pain check as a conversation: start it, ask each step (buttons, numbers or words), finish with the plan
and the check-in offer. The state machine is ``bot.core.triage``; where the progress lives (store or memory) is the
consent gate's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import payloads, replies, triage
from bot.core.consent import FU_AGAIN
from bot.core.messages import Choice, Escalation, Outcome, Reply
from bot.core.placeholders import fill
from bot.core.resilience import log_escalation
from bot.core.store import StoredTriage

if TYPE_CHECKING:
    from bot.core.answers import FaqAnswers
    from bot.core.consent import ConsentGate
    from bot.core.context import Context
    from bot.core.followups import FollowupFlow
    from bot.core.payloads import ConsentAction
    from bot.core.settings import SafetySettings
    from bot.core.store import Store


class TriageConversation:
    """Runs the triage flow of the current knowledge for one user at a time."""

    def __init__(
        self, store: Store, safety: SafetySettings, consent: ConsentGate, followups: FollowupFlow, answers: FaqAnswers
    ) -> None:
        self.store = store
        self.safety = safety
        self.consent = consent
        self.followups = followups
        self.answers = answers

    async def start(self, ctx: Context) -> Outcome:
        asked = await self.consent.gate(ctx, "tri")  # explicit consent first, or memory only after a "no"
        if asked is not None:
            return asked
        flow = ctx.k.triage
        result = triage.start(flow)
        assert result.state is not None and result.step is not None
        chat = ctx.msg.chat_id if ctx.msg.is_private else ctx.msg.user_id
        await self.consent.save_triage(ctx, StoredTriage(flow.id, result.state.step_id, (), chat))
        intro = fill(f"{flow.title}\n\n{flow.intro}", self.safety).strip()
        return Outcome((Reply(intro, private=ctx.private), self.step_reply(ctx, result.step)), "triage")

    def step_reply(self, ctx: Context, step: triage.TriageStep, prefix: str = "") -> Reply:
        choices = tuple(Choice(c.label, payloads.triage_answer(step.id, i)) for i, c in enumerate(step.choices))
        text = f"{prefix}{fill(step.question, self.safety)}"
        return Reply(text, choices=choices, private=ctx.private)

    async def typed(self, ctx: Context, state: StoredTriage, text: str) -> Outcome:
        """A typed answer to the current step (a choice's number or words)."""
        step = ctx.k.triage.steps.get(state.step_id)
        if step is None:
            await self.consent.clear_triage(ctx)
            return await self.answers.answer(ctx, text)
        index = triage.match_answer(step, text)
        if index is None:  # unclear, or a bare "yes" that fits several choices: ask again, never guess
            return Outcome((self.step_reply(ctx, step, triage.reask_hint(step, text)),), "triage")
        return await self._advance(ctx, state, index)

    async def pressed(self, ctx: Context, args: tuple[str, ...]) -> Outcome:
        """A pressed triage button: ("start",) or (step id, choice index), as ``payloads.decode`` checked them."""
        if args == ("start",):
            return await self.start(ctx)
        step_id, index = args
        state = await self.consent.get_triage(ctx)
        if state is None or state.step_id != step_id or state.flow_id != ctx.k.triage.id:
            return Outcome((Reply(replies.EXPIRED),), "expired")
        return await self._advance(ctx, state, int(index))

    async def after_consent(self, ctx: Context, action: ConsentAction) -> Outcome:
        """What a consent button goes on to do once answered: start the check, ask the step again, or say how to
        plan the check-in."""
        if action == "tri":
            return await self.start(ctx)
        if action == "fu":
            return Outcome((Reply(FU_AGAIN, private=ctx.private),), "consent")
        if action == "step":
            state = await self.consent.get_triage(ctx)
            step = ctx.k.triage.steps.get(state.step_id) if state is not None else None
            if step is not None:
                return Outcome((self.step_reply(ctx, step),), "triage")
        return Outcome((), "consent")

    async def _advance(self, ctx: Context, state: StoredTriage, index: int) -> Outcome:
        asked = await self.consent.gate(ctx, "step")  # a new consent version asks before the next stored answer
        if asked is not None:
            return asked
        flow = ctx.k.triage
        result = triage.step(flow, triage.TriageState(state.flow_id, state.step_id, state.answers), index)
        if not result.understood:
            step = flow.steps.get(state.step_id)
            if step is None:
                await self.consent.clear_triage(ctx)
                return Outcome((Reply(replies.EXPIRED),), "expired")
            return Outcome((self.step_reply(ctx, step, "Please pick one of the options.\n\n"),), "triage")
        if result.state is not None and result.step is not None:
            await self.consent.save_triage(
                ctx, StoredTriage(flow.id, result.state.step_id, result.state.answers, state.chat_id)
            )
            return Outcome((self.step_reply(ctx, result.step),), "triage")
        await self.consent.clear_triage(ctx)
        assert result.outcome is not None
        return await self._finish(ctx, result.outcome)

    async def _finish(self, ctx: Context, outcome: triage.TriageOutcome) -> Outcome:
        escalation: Escalation | None = None
        if outcome.disposition in ("emergency", "urgent"):
            escalation = Escalation(outcome.disposition, f"triage:{outcome.id}")  # type: ignore[arg-type]
            await log_escalation(self.store, ctx.user, escalation.level, escalation.category)
        out = [replies.triage_plan(ctx.k, outcome, self.safety, escalation, private=ctx.private)]
        offer = await self.followups.offer(ctx, outcome)
        if offer is not None:
            out.append(offer)
        return Outcome(tuple(out), "escalation" if escalation else "triage", escalation=escalation)
