"""The one place that turns FAQ match scores into an answer, suggestions or nothing (the engine and lint use it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.faq import Candidate
from bot.core.knowledge import CHATTER_ID, Knowledge
from bot.core.scope import focus, mentions_back, other_part
from bot.core.settings import MatchingSettings

DecisionKind = Literal["greeting", "chatter", "out-of-scope", "answer", "did-you-mean", "fallback"]


@dataclass(frozen=True, slots=True)
class FaqDecision:
    """What the FAQ path makes of a message: ``kind`` and the FAQ candidates behind it (chatter removed, best first).

    ``kind``: ``greeting`` (no content words), ``chatter``, ``out-of-scope`` (about another body part: ``part``),
    ``answer`` (the first candidate), ``did-you-mean`` (the candidates are the suggestions) or ``fallback``.
    """

    kind: DecisionKind
    candidates: tuple[Candidate, ...] = ()
    part: str = ""


def is_confident(candidates: Sequence[Candidate], m: MatchingSettings) -> bool:
    """Answer when the best match is confident, or likely and well ahead of the runner-up."""
    if not candidates:
        return False
    top = candidates[0].confidence
    second = candidates[1].confidence if len(candidates) > 1 else 0.0
    return top >= m.confident or (top >= m.likely and top - second >= m.margin)


def decide(k: Knowledge, text: str, m: MatchingSettings) -> FaqDecision:
    """The one place that turns match scores into an answer, suggestions or nothing (engine and lint both use it).

    A message about another body part (and not the back) is out of scope. In a message of several sentences the
    question part (``scope.focus``) is matched too when the whole message finds no answer: a race report or
    congratulations before the question do not make it chatter or a fallback.
    """
    terms = k.analyzer.terms(text)
    if not terms:
        return FaqDecision("greeting")
    part = other_part(text)
    if part is not None:
        return FaqDecision("out-of-scope", part=part)
    # chatter.yaml holds no back-pain words, so a message naming the back is never club chatter
    whole = _decide_terms(k, text, terms, m, chatter=not mentions_back(text))
    if whole.kind == "answer":
        return whole  # the whole message already found its answer: a part of it is not more right
    best = whole
    for reading in focus(text):
        reading_terms = k.analyzer.terms(reading)
        if not reading_terms:
            continue
        asked = _decide_terms(k, reading, reading_terms, m)
        if asked.kind == "answer":
            if best.kind != "answer" or asked.candidates[0].confidence > best.candidates[0].confidence:
                best = asked
        elif best.kind in ("chatter", "fallback") and asked.kind == "did-you-mean":
            best = asked
    return best


def _decide_terms(
    k: Knowledge, text: str, terms: list[str], m: MatchingSettings, *, chatter: bool = True
) -> FaqDecision:
    candidates = k.matcher.match(text, limit=max(3, m.max_suggestions) + 1, terms=terms)
    if chatter and candidates and candidates[0].id == CHATTER_ID and candidates[0].confidence >= m.suggest:
        return FaqDecision("chatter")
    candidates = [c for c in candidates if c.id != CHATTER_ID]
    if is_confident(candidates, m):
        return FaqDecision("answer", tuple(candidates))
    suggestions = [c for c in candidates if c.confidence >= m.suggest][: m.max_suggestions]
    if suggestions:
        return FaqDecision("did-you-mean", tuple(suggestions))
    return FaqDecision("fallback", tuple(candidates))
