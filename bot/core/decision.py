"""The one place that turns FAQ match scores into an answer, suggestions or nothing (the engine and lint use it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from bot.core.faq import Candidate
from bot.core.faq_model import OFF
from bot.core.knowledge import CHATTER_ID, Knowledge
from bot.core.scope import about_the_bot, back_pain, focus, mentions_back, other_part
from bot.core.settings import MatchingSettings
from bot.core.text import normalize

#: the entry about the bot itself: questions shaped like "what can you help with" go to it (``scope.about_the_bot``)
ABOUT_BOT = "about-bot"
#: wording score (0-100) at or above which a message is one of the answer's own phrasings: no runners-up offered
OWN_WORDING = 90.0
#: the FAQ model's best chance under which its guess is spread too thin to offer as "did you mean" on its own (a topic
#: the FAQ lacks, "is kinesiology tape worth it for my back": 0.22 for shoes, 0.13 ice, 0.12 surfaces); held-out dev
#: sets answered and offered the same with 0.2, 0.25 and 0.3
FLAT_GUESS = 0.3

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
    #: with an answer: the entries that came close, offered as "did you mean" buttons with it
    runners_up: tuple[str, ...] = ()


def is_confident(candidates: Sequence[Candidate], m: MatchingSettings) -> bool:
    """Answer when the best match is confident, or likely and well ahead of the runner-up."""
    if not candidates:
        return False
    top = candidates[0].confidence
    second = candidates[1].confidence if len(candidates) > 1 else 0.0
    return top >= m.confident or (top >= m.likely and top - second >= m.margin)


def runners_up(candidates: Sequence[Candidate], m: MatchingSettings) -> tuple[str, ...]:
    """The entries that came within ``runner_up_window`` points of an answer (a close call), offered with it as
    "did you mean" buttons: at most ``max_suggestions - 1``, none below ``suggest``, and none when the message is
    worded (nearly) as one of the answer's own phrasings."""
    if not candidates or m.runner_up_window <= 0 or candidates[0].phrase >= OWN_WORDING:
        return ()
    top = candidates[0].confidence
    close = [
        c.id
        for c in candidates[1:]
        if c.confidence >= m.suggest and top - c.confidence <= m.runner_up_window and c.id != candidates[0].id
    ]
    return tuple(close[: max(0, m.max_suggestions - 1)])


def decide(k: Knowledge, text: str, m: MatchingSettings) -> FaqDecision:
    """The one place that turns match scores into an answer, suggestions or nothing (engine and lint both use it).

    A question about the bot itself ("who are you", "what can you help with") goes to its entry. A message about
    another body part (and not the back) is out of scope. In a message of several sentences the
    question part (``scope.focus``) is matched too when the whole message finds no answer: a race report or
    congratulations before the question do not make it chatter or a fallback.
    """
    if ABOUT_BOT in k.entries and about_the_bot(text):
        usual = _decide(k, text, m)
        # "are you a physio? my back hurts when i bend", "what can you do for a sore back": a back question is answered
        back_question = mentions_back(text) and back_pain(text)
        if usual.kind == "answer" and (usual.candidates[0].id == ABOUT_BOT or back_question):
            return usual
        return FaqDecision("answer", (Candidate(ABOUT_BOT, 100.0, 100.0, 100.0),))
    return _decide(k, text, m)


def _decide(k: Knowledge, text: str, m: MatchingSettings) -> FaqDecision:
    terms = k.analyzer.terms(text)
    if not terms:
        return FaqDecision("greeting")
    part = other_part(text)
    if part is not None:
        return FaqDecision("out-of-scope", part=part)
    if m.model and k.faq_model is not None:
        return _with_model(k, text, terms, m)
    return _lexical(k, text, terms, m)


def _lexical(k: Knowledge, text: str, terms: list[str], m: MatchingSettings) -> FaqDecision:
    """The words alone: the whole message, then its question part (``scope.focus``)."""
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
    if m.embeddings and k.vectors is not None:
        candidates = rerank(k, text, candidates, m, known=k.matcher.known_share(terms))
    if is_confident(candidates, m):
        return FaqDecision("answer", tuple(candidates), runners_up=runners_up(candidates, m))
    suggestions = [c for c in candidates if c.confidence >= m.suggest][: m.max_suggestions]
    if suggestions:
        return FaqDecision("did-you-mean", tuple(suggestions))
    return FaqDecision("fallback", tuple(candidates))


def rerank(
    k: Knowledge, text: str, candidates: list[Candidate], m: MatchingSettings, *, known: float = 1.0
) -> list[Candidate]:
    """Neighbours the words cannot tell apart, told apart by meaning (the ``embeddings`` extra).

    The candidates within ``rerank_window`` points of the best are ordered by their confidence plus ``w`` points
    for each 0.01 of embedding similarity with the message (the mean of the entry's three closest phrasings)
    they have over the closest of them, i.e. minus ``100 * w * (best similarity - theirs)``. ``w`` is
    ``rerank_weight`` times ``known``, the share of the message's words the FAQ knows: a message's embedding is
    the mean of all its words, so one that is mostly names, filler or another topic says little about which entry
    it means. The winner takes the best confidence of the group: re-ranking changes which entry, never how sure the
    bot is, so answering, "did you mean" and the fallback stay where the lexical matcher put them.
    """
    if len(candidates) < 2 or k.vectors is None:
        return candidates
    top = candidates[0].confidence
    close = [c for c in candidates if top - c.confidence <= m.rerank_window]
    if len(close) < 2:
        return candidates
    sims = k.vectors.similarities([normalize(text)], only=[c.id for c in close])
    values = [sims.get(c.id, (0.0, 0.0))[1] for c in close]
    closest = max(values)
    weight = 100.0 * m.rerank_weight * max(0.0, min(1.0, known))
    ranked = sorted(
        zip(close, values, strict=True), key=lambda cv: (-(cv[0].confidence + weight * (cv[1] - closest)), cv[0].id)
    )
    order = [c for c, _ in ranked]
    best = order[0]
    winner = Candidate(best.id, top, best.lexical, best.phrase)
    return [winner, *order[1:], *candidates[len(close) :]]


@cache
def _without_embeddings(m: MatchingSettings) -> MatchingSettings:
    return dataclasses.replace(m, embeddings=False) if m.embeddings else m


def _with_model(k: Knowledge, text: str, terms: list[str], m: MatchingSettings) -> FaqDecision:
    """The FAQ model's decision when it is sure (an entry, or "not for this FAQ"), else the lexical one, with the
    model's likeliest entries as the "did you mean" buttons. While the FAQ has entries the model does not know
    (added since it was trained), a confident lexical answer for one of them comes first."""
    model = k.faq_model
    assert model is not None
    if not model.knows.issuperset(k.entries):
        lexical = _lexical(k, text, terms, m)
        if lexical.kind == "answer" and lexical.candidates[0].id not in model.knows:
            return lexical
    else:  # the model orders close neighbours itself: re-ranking them by embeddings changed nothing on held-out sets
        m = _without_embeddings(m)
    guess = model.guess(k.analyzer.stems(text), known=k.entries)
    ranked = tuple(Candidate(eid, round(100 * p, 1), 0.0, 0.0) for eid, p in guess.entries(0.0))
    if guess.chance >= m.model_answer and guess.label != OFF:
        close = tuple(c.id for c in ranked[1:] if c.confidence >= 100 * m.model_related)
        return FaqDecision("answer", ranked, runners_up=close[: max(0, m.max_suggestions - 1)])
    lexical = _lexical(k, text, terms, m)
    if guess.chance >= m.model_answer:  # sure it is not for this FAQ: no answer (unless the words are sure and it is
        # not very sure), but chatter stays chatter and suggestions stay suggestions (a tap away if it is wrong)
        if lexical.kind != "answer" or guess.chance < m.model_reject:
            return lexical
        return FaqDecision("fallback", lexical.candidates)
    if lexical.kind == "answer":  # the words are sure where the model is not: what the model liked is a tap away
        top = lexical.candidates[0].id
        liked = [c.id for c in ranked if c.confidence >= 100 * m.model_related and c.id != top]
        close = list(dict.fromkeys([*liked, *lexical.runners_up]))[: max(0, m.max_suggestions - 1)]
        return dataclasses.replace(lexical, runners_up=tuple(close))
    offered = [c for c in ranked if c.confidence >= 100 * m.model_suggest]
    if guess.chance < FLAT_GUESS:  # a flat guess says little: the words' suggestions come first ("sore back"), and
        # where the words found nothing it is the fallback, noted for the moderators ("kinesiology tape")
        if lexical.kind != "did-you-mean":
            return lexical
        offered = [*lexical.candidates, *(c for c in offered if c.id not in {s.id for s in lexical.candidates})]
    if offered:
        return FaqDecision("did-you-mean", tuple(offered[: m.max_suggestions]))
    return lexical
