"""The FAQ path for a message: a confident answer, "did you mean", or the fallback (the question kept, masked, for
the moderators)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import replies
from bot.core.decision import decide
from bot.core.masking import mask
from bot.core.messages import Outcome, Reply
from bot.core.scope import asks
from bot.core.telemetry import NoTelemetry, Telemetry
from bot.core.text import normalize

if TYPE_CHECKING:
    from bot.core.consent import ConsentGate
    from bot.core.context import Context
    from bot.core.knowledge import Knowledge
    from bot.core.settings import CoreSettings
    from bot.core.store import Store


class FaqAnswers:
    """Answers from the FAQ; records what it could not answer (``record_unanswered``: off for one-shot tools)."""

    def __init__(self, store: Store, settings: CoreSettings, consent: ConsentGate, *, record_unanswered: bool) -> None:
        self.store = store
        self.settings = settings
        self.consent = consent
        self.record_unanswered = record_unanswered
        self.telemetry: Telemetry = NoTelemetry()  # the operations endpoint's counters (bot/ops), when it is on

    def entry(
        self, k: Knowledge, entry_id: str, confidence: float = 100.0, runners_up: tuple[str, ...] = ()
    ) -> Outcome:
        """One FAQ entry's answer (a pressed FAQ button, a confident match); ``runners_up``: entries that came close,
        offered as "did you mean" buttons with it (the outcome's ``alternatives``)."""
        entry = k.entries[entry_id]
        close = [k.entries[i] for i in runners_up if i in k.entries and i != entry_id]
        reply = replies.answer(entry, k, self.settings.safety, close)
        return Outcome(
            (reply,), "answer", faq_id=entry.id, confidence=confidence, alternatives=tuple(e.id for e in close)
        )

    def sure(self, k: Knowledge, text: str) -> Outcome | None:
        """The answer when ``text`` asks a question the FAQ answers confidently, else None (a report of symptoms
        gets its safety question first). Memory only: nothing is recorded."""
        d = decide(k, text, self.settings.matching) if normalize(text) and asks(text) else None
        if d is None or d.kind != "answer":
            return None
        return self.entry(k, d.candidates[0].id, d.candidates[0].confidence, d.runners_up)

    async def answer(self, ctx: Context, text: str) -> Outcome:
        """The FAQ path: confident answer, did-you-mean, or the fallback."""
        k = ctx.k
        norm = normalize(text)
        if not norm:
            return Outcome((Reply(replies.EMPTY),), "empty")
        d = decide(k, text, self.settings.matching)
        confidence = d.candidates[0].confidence if d.candidates else 0.0
        if d.kind == "greeting":
            return Outcome((replies.greeting(k),), "fallback")  # "hi", "thanks", "ok": nothing to answer or record
        if d.kind == "chatter":
            return Outcome((replies.fallback(k, noted=False),), "fallback", confidence=0.0)
        if d.kind == "out-of-scope":
            return Outcome((replies.out_of_scope(k, d.part),), "fallback", confidence=0.0)
        if d.kind == "answer":
            return self.entry(k, d.candidates[0].id, confidence, d.runners_up)
        if d.kind == "did-you-mean":
            entries = [k.entries[c.id] for c in d.candidates]
            return Outcome(
                (replies.did_you_mean(entries),),
                "did-you-mean",
                confidence=confidence,
                alternatives=tuple(e.id for e in entries),
            )
        # kept for moderators masked (names, handles, emails, links, numbers) and linked to the asker for /forget;
        # not while storage is down (there is no row to link it to, so /forget could not find it)
        noted = self.record_unanswered and len(norm.split()) >= 2 and not ctx.degraded
        if noted:
            asker = ctx.user.id if await self.consent.is_current(ctx) else 0  # linked only with consent (issue 16)
            await self.store.record_unanswered(mask(text, ctx.msg.display_name)[:300], asker)
            self.telemetry.unanswered(ctx.msg.platform)
        return Outcome((replies.fallback(k, noted=noted),), "fallback", confidence=confidence)

    def overheard(self, k: Knowledge, text: str, *, possible: bool = False) -> Outcome | None:
        """What a listen channel gets for ``text``: a confident answer, else None (the bot stays quiet). With a
        ``possible`` red flag (a safety question the channel cannot ask) only a question gets its answer: a report of
        symptoms is not answered in public with an FAQ entry that may not fit it."""
        d = decide(k, text, self.settings.matching)
        if d.kind != "answer" or (possible and not asks(text)):
            return None
        return self.entry(k, d.candidates[0].id, d.candidates[0].confidence)
