"""What the bot may say in a listen channel (overheard, not addressed to it): decided here, for every platform."""

from __future__ import annotations

from dataclasses import replace

from bot.core.messages import Outcome

#: the outcomes that speak in a listen channel: a confident FAQ answer and an alarm (its short public line, the
#: details privately); everything else stays quiet
SPEAKS = frozenset({"answer", "escalation"})


def overheard(outcome: Outcome) -> Outcome:
    """``outcome`` as it may be sent in a listen channel: its replies only for the kinds that speak there. (A failed
    red-flag detector still adds the safety line afterwards: failing closed is not chatter.)"""
    if outcome.kind in SPEAKS or not outcome.replies:
        return outcome
    return replace(outcome, replies=())
