"""Whether a symptom found in a message counts: negation, hypotheticals, other people, figurative use (ConText).

The context vocabulary is data (``knowledge/red_flags/context.yaml``): negators and post-negators (NegEx's
pre- and post-negation triggers), resolution markers (historical), hypothetical triggers, other people
(experiencer), clause breaks (termination terms), and the word-sense guards: figurative phrases, non-person
subjects ("my pace collapsed") and distance units after a number ("18 kms").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.core.red_flags.negation import SUBJECT_WORDS, negated_after, negated_before
from bot.core.red_flags.patterns import Hit
from bot.core.red_flags.tokens import Tokens, is_number
from bot.core.red_flags.vocabulary import (
    ABOUT_THEM,
    ANYWHERE,
    BREAK,
    CONDITIONAL,
    FIGURATIVE,
    HISTORY,
    HYPO,
    JOCULAR,
    NEG,
    NON_PERSON,
    NOT_NEG,
    OTHERS,
    POST,
    RESOLVED,
    UNCERTAIN,
    UNIT_LEADS,
    UNITS,
    ConceptInfo,
    Window,
)

_RESOLVED = "resolved (over now)"
#: Years a message may date a past event with ("in 2019", "back in 2017").
_YEAR_RE = re.compile(r"(19[5-9]\d|20[0-4]\d)$")
_YEAR_LEADS = frozenset({"in", "since", "of", "during"})
#: A conditional opens a clause or follows one of these ("and if i ..."); after a verb it is a real report
#: ("cant tell if he needs the loo", "easier if i wasnt here").
_CONDITIONAL_LEADS = frozenset("and but so or even like only what as just".split())
#: Words that may stand between a non-person subject and the verb it makes figurative ("my pace totally collapsed").
_SUBJECT_FILLERS = frozenset(
    "just totally completely utterly absolutely has had have was is were are badly really fully kind "
    "sort of literally properly basically pretty much".split()
)
#: How many words before a symptom a non-person subject may stand.
_NON_PERSON_REACH = 4
#: How close "had" must follow the person ("my mum (65) had"), and the symptom follow "had".
_OTHER_GAP = 3
#: How far another person may stand before a symptom and still be its subject ("my mate just passed out").
_SUBJECT_GAP = 2
_HISTORY_REACH = 7
#: A first-person word between "my dad had" and the symptom makes the symptom the writer's own.
_FIRST_PERSON = frozenset("i im ive id me my mine myself".split())
#: Next to the event, these make it current ("my son had a crash today"), so it counts.
_NOW_WORDS = frozenset("today tonight yesterday now morning afternoon evening earlier minutes".split())



class MessageContext:
    """One message's term hits, with negation and the guards worked out lazily per concept (most never are)."""

    def __init__(
        self, concepts: Mapping[str, ConceptInfo], window: Window, toks: Tokens, hits: list[Hit]
    ) -> None:
        n = len(toks.words)
        self.concepts = concepts
        self.window = window
        self.toks = toks
        self.covered = [False] * n  # words inside a symptom term or a not-negation phrase
        self.pseudo = [False] * n  # words inside a not-negation phrase ("not normal", "is that normal")
        self.figurative = [False] * n  # words inside a figurative phrase ("suicide sprints", "passed out laughing")
        self.unit = [False] * n  # a distance unit after a number ("18 kms")
        self.non_person_end: set[int] = set()
        self.neg_end: dict[int, Hit] = {}
        self.post_start: dict[int, Hit] = {}
        self.breaks: set[int] = set()
        self.resolved: list[Hit] = []
        self.hypo: list[Hit] = []
        self.history: list[Hit] = []
        self.others_end: set[int] = set()
        self.about_them: list[Hit] = []
        self.conditional: list[Hit] = []
        self.jocular_sentences: set[int] = set()
        self.anywhere = False
        self._theirs: bool | None = None
        self.raw: dict[str, list[Hit]] = {}
        self._valid: dict[str, list[Hit]] = {}
        leads: set[int] = set()
        units: list[Hit] = []
        for h in hits:
            c = h.concept
            if c == NEG:
                self.neg_end.setdefault(h.end - 1, h)
            elif c == POST:
                self.post_start.setdefault(h.start, h)
            elif c == BREAK:
                self.breaks.add(h.start)
            elif c == RESOLVED:
                self.resolved.append(h)
            elif c == HYPO:
                self.hypo.append(h)
            elif c == HISTORY:
                self.history.append(h)
            elif c == OTHERS:
                self.others_end.add(h.end)
            elif c == ABOUT_THEM:
                self.about_them.append(h)
            elif c == CONDITIONAL:
                if h.start == 0 or toks.clause[h.start - 1] != toks.clause[h.start] or (
                    toks.words[h.start - 1] in _CONDITIONAL_LEADS
                ):
                    self.conditional.append(h)
            elif c == ANYWHERE:
                self.anywhere = True
            elif c == JOCULAR:
                self.jocular_sentences.add(toks.sentence[h.start])
            elif c == FIGURATIVE:
                for i in range(h.start, h.end):
                    self.figurative[i] = True
            elif c == NON_PERSON:
                self.non_person_end.add(h.end)
            elif c == UNITS:
                units.append(h)
            elif c == UNIT_LEADS:
                leads.add(h.end)
            else:
                for i in range(h.start, h.end):
                    self.covered[i] = True
                if c == NOT_NEG:
                    for i in range(h.start, h.end):
                        self.pseudo[i] = True
                else:
                    self.raw.setdefault(c, []).append(h)
        words = toks.words
        self.dated_sentences = {
            toks.sentence[i] for i in range(1, len(words)) if _YEAR_RE.match(words[i]) and words[i - 1] in _YEAR_LEADS
        }
        for h in units:
            if h.start > 0 and (is_number(words[h.start - 1]) or h.start in leads):
                for i in range(h.start, h.end):
                    self.unit[i] = True

    def free(self, h: Hit) -> bool:
        return not any(self.covered[h.start : h.end])

    def real(self, h: Hit) -> bool:
        return not any(self.pseudo[h.start : h.end])

    def valid(self, concept: str) -> list[Hit]:
        """The concept's terms that count as the writer's own symptom, now."""
        found = self._valid.get(concept)
        if found is None:
            found = [h for h in self.raw.get(concept, ()) if self.cancelled_by(h) is None]
            self._valid[concept] = found
        return found

    def blocking(self, concept: str) -> list[Hit]:
        """An ``unless`` concept's terms that block a rule: being over ("went away") does not stop a bike ride
        from explaining a numb bum; only negation and the word-sense guards do."""
        key = "!" + concept
        found = self._valid.get(key)
        if found is None:
            found = [h for h in self.raw.get(concept, ()) if self.cancelled_by(h) in (None, _RESOLVED, *UNCERTAIN)]
            self._valid[key] = found
        return found

    def possible(self, concept: str) -> list[Hit]:
        """The concept's terms that count, or might (an uncertain reason only): enough for a safety question."""
        key = "?" + concept
        found = self._valid.get(key)
        if found is None:
            found = [h for h in self.raw.get(concept, ()) if self.cancelled_by(h) in (None, *UNCERTAIN)]
            self._valid[key] = found
        return found

    def cancelled_by(self, h: Hit) -> str | None:
        """Why a symptom term does not count here, or None when it counts (``runbot explain`` shows the reason)."""
        toks, window = self.toks, self.window
        if self.unit[h.start]:
            return "distance unit after a number"
        if any(self.figurative[h.start : h.end]):
            return "figurative phrase"
        if self.non_person_end and self._non_person_subject(h):
            return "non-person subject"
        if not h.polarity and negated_before(h, toks, self.neg_end, self.breaks, self.free, window.negation):
            return "negated"
        if negated_after(h, toks, self.post_start, self.covered, self.real, window.post):
            return "negated after (fine/normal)"
        info = self.concepts.get(h.concept)
        if info is None or not info.past_ok:
            sent = toks.sentence[h.start]
            for r in self.resolved:
                if r.start >= h.end and toks.sentence[r.start] == sent and self.real(r):
                    return _RESOLVED
        if self.resolved and self.others_end and self._theirs_and_over(h):
            return "another person's, and over"
        if self.hypo and self._hypothetical(h, self.hypo):
            return "hypothetical or a question about signs"
        if self.history and self.others_end and self._someone_elses_past(h):
            return "another person's past"
        sent = toks.sentence[h.start]
        if sent in self.jocular_sentences:
            return "said as a joke (lol, haha, a laughing emoji)"
        if self.conditional and self._hypothetical(h, self.conditional):
            return "conditional (if / what would happen if)"
        if sent in self.dated_sentences and not self._dated_then_now(h):
            return "dated past event (in 2019)"
        if self.anywhere:
            return "the message says it is a question or all is well (just curious, i'm fine)"
        return None

    def _non_person_subject(self, h: Hit) -> bool:
        """ "my pace collapsed", "the gazebo totally collapsed": a thing, not a person, does it."""
        toks = self.toks
        j = h.start
        steps = 0
        while j > 0 and steps <= _NON_PERSON_REACH and toks.clause[j - 1] == toks.clause[h.start]:
            if j in self.non_person_end:
                return True
            if toks.words[j - 1] not in _SUBJECT_FILLERS:
                return False
            j -= 1
            steps += 1
        return j in self.non_person_end
    def _theirs_and_over(self, h: Hit) -> bool:
        """Another person right before the symptom, and it is over: "my friend fainted once, fine after"."""
        toks = self.toks
        if not any(
            h.start - gap in self.others_end
            and not any(w in _FIRST_PERSON for w in toks.words[h.start - gap : h.start])
            for gap in range(_SUBJECT_GAP + 1)
        ):
            return False
        sent = toks.sentence[h.start]
        over = [r for r in self.resolved if r.start >= h.end and toks.sentence[r.start] == sent and self.real(r)]
        if not over:
            return False
        if self._past_ok(h) and self._now_after(over[0].end):
            # "my mum had cancer treatment last year and now she has new back pain": the history is the point,
            # and the message goes on about that person now.
            return False
        return True

    def _dated_then_now(self, h: Hit) -> bool:
        """ "prostate cancer treated in 2019, now new back pain": a now-word after the year keeps it current."""
        toks = self.toks
        sent = toks.sentence[h.start]
        years = [i for i, w in enumerate(toks.words) if toks.sentence[i] == sent and _YEAR_RE.match(w)]
        return bool(years) and self._now_after(years[0] + 1)

    def _now_after(self, start: int) -> bool:
        """A word like "now"/"today" after ``start`` that is not inside a resolved phrase ("fine now")."""
        words = self.toks.words
        for j in range(start, len(words)):
            if words[j] in _NOW_WORDS and not any(r.start <= j < r.end for r in self.resolved):
                return True
        return False

    def _hypothetical(self, h: Hit, triggers: list[Hit]) -> bool:
        """After one of ``triggers`` ("what are the signs of", "if i ever get" ...) in the same sentence (up to a
        "but")."""
        toks = self.toks
        sent = toks.sentence[h.start]
        for r in triggers:
            if r.start <= h.start and toks.sentence[r.start] == sent and self._same_statement(r.end, h.start):
                return True
        return False

    def _same_statement(self, start: int, end: int) -> bool:
        """No "but", no new clause starting with "i"/"my" and no "and my" between the two positions."""
        toks = self.toks
        words, clause = toks.words, toks.clause
        for j in range(max(start, 1), end + 1):
            if j in self.breaks:
                return False
            if words[j] in SUBJECT_WORDS and (clause[j] != clause[j - 1] or words[j - 1] == "and"):
                return False
        return True

    def _someone_elses_past(self, h: Hit) -> bool:
        """ "my dad had a heart attack", unless the message is about that person now ("now his back hurts")."""
        toks = self.toks
        sent = toks.sentence[h.start]
        for v in self.history:
            if not (v.end <= h.start <= v.end + _HISTORY_REACH and toks.sentence[v.start] == sent):
                continue
            if not any(v.start - gap in self.others_end for gap in range(_OTHER_GAP + 1)):
                continue
            if any(w in _FIRST_PERSON for w in toks.words[v.end : h.start]):
                continue
            if any(w in _NOW_WORDS for w in toks.words[v.end : h.end + 4]):
                continue
            return not self._about_them()
        return False

    def _about_them(self) -> bool:
        if self._theirs is None:
            resolved = self.resolved
            self._theirs = any(
                self.real(a) and not any(r.start <= a.start < r.end or a.start <= r.start < a.end for r in resolved)
                for a in self.about_them
            )
        return self._theirs


    def _past_ok(self, h: Hit) -> bool:
        info = self.concepts.get(h.concept)
        return info is not None and info.past_ok
