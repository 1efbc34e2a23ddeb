"""The red-flag detector: two tiers (alarm: escalate now; check: ask one safety question) over the catalogue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import product
from types import MappingProxyType
from typing import TYPE_CHECKING

from bot.core.messages import Escalation, EscalationLevel, SafetyCheck
from bot.core.placeholders import fill
from bot.core.red_flags.context import MessageContext
from bot.core.red_flags.learned import MIN_EVIDENCE_TO_DEMOTE, MODEL_FILE, LearnedCheck
from bot.core.red_flags.lexicon import Lexicon
from bot.core.red_flags.patterns import Compiled, Hit
from bot.core.red_flags.tokens import Tokens, tokenize
from bot.core.red_flags.vocabulary import ConceptInfo, Rule, Window

if TYPE_CHECKING:
    from bot.core.settings import SafetySettings

LEVELS: tuple[EscalationLevel, ...] = ("emergency", "urgent")
LEVEL_RANK = {"emergency": 0, "urgent": 1}
Tier = str  # "alarm" | "check"


@dataclass(frozen=True, slots=True)
class RedFlagCategory:
    """One catalogue category: its level, what to say on an alarm, and the question to ask on a possible hit."""

    id: str
    level: EscalationLevel
    title: str
    message: str
    check: str = ""
    file: str = ""
    line: int = 0
    #: must raise the alarm / must get the safety question / must stay quiet (``runbot check`` runs them all)
    examples: tuple[str, ...] = ()
    check_examples: tuple[str, ...] = ()
    quiet: tuple[str, ...] = ()
    #: the alarm reply opens with the "get help now — call {emergency_number}" line (``header: false`` in the YAML
    #: lets the message open instead, e.g. support first for self-harm) and ends with the "not a diagnosis" note
    header: bool = True
    footer: bool = True
    #: a more severe category whose safety question follows this category's alarm ("then_ask" in the YAML): people
    #: rarely mention the graver signs unless asked (new leg weakness -> is it sudden, worse, in both legs?)
    then_ask: str = ""

    def render(self, safety: SafetySettings) -> str:
        """The message with every placeholder filled for ``safety``."""
        return fill(self.message, safety)

    def render_check(self, safety: SafetySettings) -> str:
        return fill(self.check, safety)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """Why a category fired: the tier, the rule's file and line, and the words matched."""

    category: str
    level: EscalationLevel
    rule_line: int
    words: tuple[str, ...]
    tier: Tier = "alarm"
    file: str = ""
    #: for the learned check: the model's chance of a red flag
    chance: float | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the detector makes of a message: alarm hits, and check hits for categories without an alarm."""

    alarms: tuple[RuleHit, ...] = ()
    checks: tuple[RuleHit, ...] = ()
    #: with an alarm: the question about something more severe that the alarm must not hide (a check hit above the
    #: alarm's level, or the alarm category's ``then_ask``); the bot asks it after the alarm
    also_ask: RuleHit | None = None

    @property
    def escalation(self) -> Escalation | None:
        return Escalation(self.alarms[0].level, self.alarms[0].category) if self.alarms else None

    @property
    def possible(self) -> RuleHit | None:
        """The most severe check-tier hit, when there is no alarm at all."""
        return self.checks[0] if self.checks and not self.alarms else None


@dataclass(frozen=True, slots=True)
class TermFound:
    """A symptom term in the message, and why it does not count (``cancelled``) when it doesn't."""

    concept: str
    words: str
    cancelled: str | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything ``runbot explain`` prints for one message."""

    terms: tuple[TermFound, ...]
    assessment: Assessment

    @property
    def tier(self) -> str:
        if self.assessment.alarms:
            return "alarm"
        return "check" if self.assessment.checks else "none"


class RedFlagDetector:
    """Finds red-flag categories in a message. Build it with :func:`bot.core.red_flags.parse_red_flags`."""

    categories: Mapping[str, RedFlagCategory]

    def __init__(
        self,
        categories: Sequence[RedFlagCategory],
        rules: Mapping[str, Sequence[Rule]],
        check_rules: Mapping[str, Sequence[Rule]],
        concepts: Mapping[str, ConceptInfo],
        compiled: Compiled,
        window: Window,
        lexicon: Lexicon | None = None,
    ) -> None:
        ordered = sorted(categories, key=lambda c: LEVEL_RANK[c.level])  # stable: file order within a level
        self.categories = MappingProxyType({c.id: c for c in ordered})
        self._rules = {cid: tuple(rules.get(cid, ())) for cid in self.categories}
        self._check_rules = {cid: tuple(check_rules.get(cid, ())) for cid in self.categories}
        self._concepts = dict(concepts)
        self._m = compiled
        self._window = window
        self._lexicon = lexicon or Lexicon()
        self.learned: LearnedCheck | None = None

    def with_learned(self, model: LearnedCheck | None) -> RedFlagDetector:
        """This detector with the learned check (``knowledge/red_flags/learned-check.json``) plugged in."""
        self.learned = model
        return self

    def assess(self, text: str) -> Assessment:
        """Both tiers for one message. Raises on an internal error: the caller fails closed, never silent."""
        toks = self.words(text)
        if toks is None:
            return Assessment()
        ctx = self._context(toks)
        return self._also_ask(self._learned_check(toks, Assessment() if ctx is None else self._assess(ctx)))

    def words(self, text: str) -> Tokens | None:
        """The message as the rules and the learned check see it: unified words, variants rewritten."""
        if not isinstance(text, str) or not text.strip():
            return None
        toks = self._lexicon.rewrite(tokenize(text))  # tokens.fold cuts the text at MAX_SCAN_CHARS
        return toks if toks.words else None

    def _learned_check(self, toks: Tokens, found: Assessment) -> Assessment:
        """The learned model's part: it asks when no rule found anything, and an alarm it is sure is no red flag
        (chance below ``demote_below``: "crashed my bike, I'm fine") becomes the question instead. It never alarms."""
        model = self.learned
        if model is None:
            return found
        guess = model.guess(toks.words)
        chance = 0.0 if guess is None else round(guess.chance, 2)
        if found.alarms:
            if chance >= model.demote_below or guess is None or guess.evidence < MIN_EVIDENCE_TO_DEMOTE:
                return found
            asked = tuple(replace(h, tier="check", chance=chance) for h in found.alarms)
            return Assessment((), asked + found.checks)
        cat = self.categories.get(guess.category) if guess is not None else None
        if guess is None or cat is None or guess.chance < model.threshold:
            return found
        if any(LEVEL_RANK[h.level] <= LEVEL_RANK[cat.level] for h in found.checks):
            return found  # a rule already asks at this level or a more severe one
        # no rule asks, or one asks only about something less severe ("pain between my shoulder blades" while the
        # model hears an emergency): the model's question comes first
        asked = RuleHit(cat.id, cat.level, 0, guess.words, "check", f"red_flags/{MODEL_FILE}", chance)
        return Assessment((), (asked, *found.checks))

    def _also_ask(self, found: Assessment) -> Assessment:
        """An alarm never hides a more severe possibility: a check hit above the alarm's level is asked after it,
        else the alarm category's ``then_ask`` question (for the signs people do not mention unless asked)."""
        if not found.alarms:
            return found
        top = found.alarms[0]
        graver = [h for h in found.checks if LEVEL_RANK[h.level] < LEVEL_RANK[top.level]]
        if graver:
            return replace(found, also_ask=graver[0])
        where = self.categories.get(top.category)
        follow = self.categories.get(where.then_ask) if where is not None else None
        if where is None or follow is None or LEVEL_RANK[follow.level] >= LEVEL_RANK[top.level]:
            return found
        asked = RuleHit(follow.id, follow.level, where.line, top.words, "check", where.file)
        return replace(found, also_ask=asked)

    def _assess(self, ctx: MessageContext) -> Assessment:
        alarms: list[RuleHit] = []
        checks: list[RuleHit] = []
        for cid, cat in self.categories.items():
            hit = self._first(cid, cat.level, self._rules[cid], ctx, "alarm")
            if hit is not None:
                alarms.append(hit)
                continue
            hit = self._first(cid, cat.level, self._check_rules[cid], ctx, "check")
            if hit is None:  # an alarm rule that fires only on uncertain terms ("if i couldnt pee", "lol") asks
                hit = self._first(cid, cat.level, self._rules[cid], ctx, "check", uncertain=True)
            if hit is not None:
                checks.append(hit)
        # most severe first; within a level, the category whose rule matched more of the message ("collapsed" and
        # "very hot" is heat illness before "collapsed" alone is cardiac): its message fits best
        alarms.sort(key=lambda h: (LEVEL_RANK[h.level], -len(h.words)))
        return Assessment(tuple(alarms), tuple(checks))

    def detect(self, text: str) -> Escalation | None:
        """The most severe alarm-tier category the message describes (emergency before urgent), or None."""
        return self.assess(text).escalation

    def detect_all(self, text: str) -> list[Escalation]:
        """Every alarm-tier category the message describes, most severe first."""
        return [Escalation(h.level, h.category) for h in self.assess(text).alarms]

    def safety_check(self, hit: RuleHit, safety: SafetySettings) -> SafetyCheck:
        cat = self.categories[hit.category]
        question = cat.render_check(safety)
        return SafetyCheck(cat.level, cat.id, question)

    def explain(self, text: str) -> Explanation:
        """The terms found (and why any do not count), the rules that fired and the tier."""
        toks = self.words(text)
        ctx = None if toks is None else self._context(toks)
        if toks is None or ctx is None:
            return Explanation((), Assessment() if toks is None else self._learned_check(toks, Assessment()))
        words = ctx.toks.words
        terms = tuple(
            TermFound(concept, " ".join(words[h.start : h.end]), ctx.cancelled_by(h))
            for concept, hits in ctx.raw.items()
            if not concept.startswith("~")
            for h in hits
        )
        return Explanation(terms, self._also_ask(self._learned_check(toks, self._assess(ctx))))

    def _context(self, toks: Tokens) -> MessageContext | None:
        hits = self._m.find(toks) + self._lexicon.age_hits(toks)
        if not hits:
            return None
        ctx = MessageContext(self._concepts, self._window, toks, hits)
        return ctx if ctx.raw else None

    @staticmethod
    def _first(
        cid: str,
        level: EscalationLevel,
        rules: Sequence[Rule],
        ctx: MessageContext,
        tier: Tier,
        *,
        uncertain: bool = False,
    ) -> RuleHit | None:
        found = ctx.raw.keys()
        for rule in rules:
            if not rule.needs <= found:
                continue
            combo = fire(rule, ctx, ctx.toks, uncertain=uncertain)
            if combo is not None:
                words = tuple(" ".join(ctx.toks.words[h.start : h.end]) for h in combo)
                return RuleHit(cid, level, rule.line, words, tier, rule.file)
        return None


def fire(rule: Rule, ctx: MessageContext, toks: Tokens, *, uncertain: bool = False) -> list[Hit] | None:
    """The hits that make ``rule`` fire in this message, or None; ``uncertain``: terms that only might count do."""
    pools = [ctx.possible(c) if uncertain else ctx.valid(c) for c in rule.concepts]
    if not all(pools):
        return None
    blockers = [h for name in rule.unless if name in ctx.raw for h in ctx.blocking(name)]
    if rule.scope == "message":
        return None if blockers else [pool[0] for pool in pools]
    blocked = {toks.sentence[h.start] for h in blockers}
    if rule.scope == "sentence" or len(pools) == 1:
        shared = {toks.sentence[h.start] for h in pools[0]} - blocked
        for pool in pools[1:]:
            shared &= {toks.sentence[h.start] for h in pool}
        if not shared:
            return None
        first = min(shared)
        return [next(h for h in pool if toks.sentence[h.start] == first) for pool in pools]
    window = rule.scope
    assert isinstance(window, int)
    count = 0
    for combo in product(*pools):
        count += 1
        if count > 5000:  # a pathological message; the first combinations were already tried
            break
        lo = min(h.start for h in combo)
        hi = max(h.end for h in combo)
        if hi - lo <= window and not any(toks.sentence[h.start] in blocked for h in combo):
            return list(combo)
    return None
