"""The consent gate (issue 16): nothing health-related is stored before an explicit, current "Yes, I agree".

Asked once, privately, before the first stored health answer (starting a back-pain check, a step of a check when
the consent text changed since, accepting a check-in). "No thanks" runs the check from memory for this session
(nothing stored, no check-ins offered). FAQ answers and red-flag escalations never wait for it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core import payloads
from bot.core.consent_text import ConsentText
from bot.core.messages import Choice, IncomingMessage, Outcome, Reply
from bot.core.payloads import ConsentAction
from bot.core.resilience import UNAVAILABLE
from bot.core.store import Store, StoredTriage

if TYPE_CHECKING:
    from bot.core.context import Context
    from bot.core.settings import PrivacySettings

#: in-memory sessions (refusals and check progress held without storage) kept at most; the oldest go first
MAX_SESSIONS = 10_000

DECLINED = (
    "OK, I won't store anything from the check. We can still go through it: your answers stay in my memory for "
    "this conversation only (they're gone when it ends or I restart), and I won't offer check-ins, as those would "
    "need storing. /consent changes this any time."
)
AGREED = "Thank you. I've noted your agreement (version {version}). /consent shows or withdraws it any time."
FU_AGAIN = "Now press \"Yes, check in\" again and I'll plan the check-in."
NO_CHECKINS = (
    "You chose not to have data stored, so I can't plan check-ins (they need storing). /consent changes this."
)
CHANGED = "The consent text has changed since I asked: please read the current version."


@dataclass(frozen=True, slots=True)
class CarryOn:
    """A consent answer that goes on: ``note`` first, then what the button was for (``action``: start the check,
    ask the step again, plan the check-in, nothing)."""

    note: Reply
    action: ConsentAction


class ConsentGate:
    """The engine's side of consent: the question, the answers, and where a check's progress lives (the store with
    consent, memory without)."""

    def __init__(self, store: Store, privacy: PrivacySettings) -> None:
        self.store = store
        self.privacy = privacy
        self._declined: OrderedDict[str, None] = OrderedDict()
        self._memory: OrderedDict[str, StoredTriage] = OrderedDict()

    # ------------------------------------------------------------------ state
    def declined(self, msg: IncomingMessage) -> bool:
        """Said "No thanks" in this session: the check runs from memory."""
        return _who(msg) in self._declined

    async def is_current(self, ctx: Context) -> bool:
        """Stored consent to the current text (same version and hash)."""
        if ctx.degraded or ctx.user.id == 0:
            return False
        record = await self.store.consent_of(ctx.user)
        text = ctx.k.consent
        return record is not None and record.version == text.version and record.text_hash == text.sha256

    async def gate(self, ctx: Context, action: ConsentAction) -> Outcome | None:
        """None when the next health answer may go ahead (stored with current consent, or in memory after a "no");
        else the consent question, asked privately."""
        if self.declined(ctx.msg) or await self.is_current(ctx):
            return None
        record = None if ctx.user.id == 0 else await self.store.consent_of(ctx.user)
        return self.question(ctx, action, changed=record is not None)

    def question(self, ctx: Context, action: ConsentAction, *, changed: bool = False) -> Outcome:
        text = ctx.k.consent
        body = self.render(text)
        if changed:
            body = f"I've updated what I tell you about storing your data (now version {text.version}).\n\n" + body
        choices = (
            Choice(text.yes, payloads.consent_yes(text.short, action)), Choice(text.no, payloads.consent_no(action))
        )
        return Outcome((Reply(body, choices=choices, private=ctx.private),), "consent")

    def render(self, text: ConsentText) -> str:
        p = self.privacy
        return text.render(
            operator=p.operator_name or "the club's bot operator",
            retention_days=p.retention_days,
            triage_days=p.triage_days,
        )

    # ------------------------------------------------------------------ answers
    async def choice(self, ctx: Context, args: tuple[str, ...]) -> Outcome | CarryOn:
        """A pressed "Yes, I agree" (stored) or "No thanks" (remembered for the session), then the button's action
        (``CarryOn``: the caller starts the check, asks the step again...); an Outcome when it ends here. ``args``
        as ``payloads.decode`` checked them: ("yes", text hash, action) or ("no", action)."""
        action: ConsentAction = args[-1]  # type: ignore[assignment]
        store = self.store
        if args[0] == "no":
            self._remember(self._declined, _who(ctx.msg), None)
            stored = None if ctx.user.id == 0 else await store.get_triage(ctx.user)
            if stored is not None:  # a check begun under an older consent: carried on in memory, deleted from disk
                self._remember(self._memory, _who(ctx.msg), stored)
                await store.clear_triage(ctx.user)
            return CarryOn(Reply(DECLINED, private=ctx.private), action)
        short = args[1]
        text = ctx.k.consent
        if ctx.degraded:  # nowhere to keep the "yes": say so rather than pretend
            return Outcome((Reply(UNAVAILABLE, private=ctx.private),), "unavailable")
        if short != text.short:
            return first(Reply(CHANGED, private=ctx.private), self.question(ctx, action))
        # the first thing stored about a runner: their row comes with their "yes"
        await store.give_consent(await ctx.stored_user(store), text.version, text.sha256)
        self._declined.pop(_who(ctx.msg), None)
        held = self._memory.pop(_who(ctx.msg), None)
        if held is not None:  # agreed mid-check: from now on the progress is stored
            await store.save_triage(ctx.user, held)
        return CarryOn(Reply(AGREED.format(version=text.version), private=ctx.private), action)

    async def status(self, ctx: Context, args: str) -> Outcome:
        """/consent: the state, with the buttons to agree or withdraw; ``/consent withdraw`` withdraws."""
        word = args.strip().lower()
        record = None if ctx.user.id == 0 else await self.store.consent_of(ctx.user)
        if word in ("withdraw", "off", "no", "revoke"):
            return await self.withdraw(ctx)
        text = ctx.k.consent
        if record is None:
            state = "You haven't agreed to me storing health data, so I store none."
            if self.declined(ctx.msg):
                state += " (You said no in this conversation: checks run from memory.)"
            out = self.question(ctx, "none")
            return first(Reply(state, private=ctx.private), out)
        when = record.given_at.strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"You agreed to version {record.version} of my consent text on {when}."]
        if record.version != text.version or record.text_hash != text.sha256:
            lines.append(f"It has changed since (now version {text.version}): I'll ask again before storing more.")
        lines.append("Withdrawing deletes your check answers, check-ins and safety log, and stops check-ins.")
        choices = (Choice("Withdraw consent", payloads.command("consent", "withdraw")),)
        return Outcome((Reply("\n".join(lines), choices=choices, private=ctx.private),), "command")

    async def withdraw(self, ctx: Context) -> Outcome:
        removed = await self.store.withdraw_consent(ctx.user) if ctx.user.id else {}
        self.forget_session(ctx.msg)
        total = sum(removed.values()) - removed.get("consents", 0)
        text = (
            "Done: I've withdrawn your consent, deleted the health data I stored about you"
            f" ({total} row(s): check answers, check-ins, safety log, unanswered questions) and cancelled any"
            " check-ins. Questions and safety advice still work; I'll ask again before storing anything."
        )
        return Outcome((Reply(text, private=ctx.private),), "command")

    # ------------------------------------------------------------------ where a check's progress lives
    async def conversation(self, ctx: Context) -> tuple[StoredTriage | None, int | None]:
        held = self._memory.get(_who(ctx.msg))
        if held is not None:
            return held, None
        if not ctx.user.stored or ctx.user.new:  # nothing stored about them yet
            return None, None
        return await self.store.conversation(ctx.user)

    async def get_triage(self, ctx: Context) -> StoredTriage | None:
        held = self._memory.get(_who(ctx.msg))
        if held is not None or self.declined(ctx.msg):
            return held
        return await self.store.get_triage(ctx.user)

    async def save_triage(self, ctx: Context, state: StoredTriage) -> None:
        if self.declined(ctx.msg):
            self._remember(self._memory, _who(ctx.msg), state)
        else:
            await self.store.save_triage(ctx.user, state)

    async def clear_triage(self, ctx: Context) -> bool:
        held = self._memory.pop(_who(ctx.msg), None)
        if self.declined(ctx.msg):
            return held is not None
        return await self.store.clear_triage(ctx.user) or held is not None

    def forget_session(self, msg: IncomingMessage) -> bool:
        """Drop what memory holds for the user (a red flag ends the check, /forget, withdrawal)."""
        self._declined.pop(_who(msg), None)
        return self._memory.pop(_who(msg), None) is not None

    def stop_check(self, msg: IncomingMessage) -> bool:
        """A red flag stops a check held in memory (the stored one is stopped by the escalation bookkeeping)."""
        return self._memory.pop(_who(msg), None) is not None

    @staticmethod
    def _remember(table: OrderedDict, key: str, value: object) -> None:  # type: ignore[type-arg]
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_SESSIONS:
            table.popitem(last=False)


def _who(msg: IncomingMessage) -> str:
    return f"{msg.platform}:{msg.user_id}"


def first(reply: Reply, outcome: Outcome) -> Outcome:
    """``outcome`` with ``reply`` shown before its replies."""
    return Outcome((reply, *outcome.replies), outcome.kind, escalation=outcome.escalation)
