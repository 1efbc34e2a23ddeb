"""Red-flag detection: finds messages that describe an emergency or need a doctor today.

The catalogue (``knowledge/red_flags.yaml``) is written by moderators in a small pattern language,
documented at the top of that file. In short:

* a **term** is a word or phrase; ``word*`` matches any word starting with ``word``; ``_`` is any one
  word and ``..`` any 0-3 words inside a phrase; ``a|b|c`` is any of those words at that place
  (``pee|wee .. cloudy|smell*``); longer words also match with a typo or two;
* a **concept** is a named list of terms ("any of these");
* a **rule** is a list of concepts that must all be present (non-negated) in the same sentence
  (or the whole message, or a window of N words), optionally ``unless`` another concept is there;
* a **category** (``cauda-equina``, ``infection`` ...) has a level, a message and one or more rules:
  any rule firing is a hit.

A term counts only when it is not negated: a negator ("no", "not", "without", "never", ...) before it
in the same clause, a "fine"/"normal" right after it ("peeing is fine"), or a resolution marker in the
same sentence ("fully recovered", "fine now") cancels it. Terms that carry their own negation
("can't pee", "no feeling") are never cancelled by a negator in front of them.

A term also does not count when it is not the writer's own symptom: after a ``hypothetical`` marker in
the same sentence ("what are the signs of ...", "if i ever get ...", "read a story about a runner who
..."), or as another person's past event ("my dad had a heart attack at 80") unless the message goes on
about that person now ("... and now his back hurts"), or when another person is its subject and a resolution
marker follows ("my friend fainted at a race once, totally fine after").

Everything is compiled once in :class:`RedFlagDetector`; :meth:`RedFlagDetector.detect` runs on every
message, never raises, and takes about 2 ms for a 2,000-character message (a short one: well under 1 ms).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from types import MappingProxyType
from typing import Any

from rapidfuzz.distance import Levenshtein

from bot.core.messages import Escalation, EscalationLevel
from bot.core.yamlio import LDict, LList, Problem, line_of

__all__ = ["RedFlagCategory", "RedFlagDetector", "RuleHit", "parse_red_flags"]

#: Messages are scanned up to this many characters (Discord and Telegram messages are shorter).
MAX_SCAN_CHARS = 6000

LEVELS: tuple[EscalationLevel, ...] = ("emergency", "urgent")
_LEVEL_RANK = {"emergency": 0, "urgent": 1}

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CONCEPT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS = frozenset({"emergency_number", "crisis_line"})

# --- text to tokens ------------------------------------------------------------------------------

#: Combining accents, zero-width and direction marks: dropped so "cafe\u0301" reads "cafe".
_COMBINING_RE = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f\u1ab0-\u1aff\u1dc0-\u1dff"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f\ufeff\u00ad]"
)
_APOSTROPHES_RE = re.compile("['\u2019\u2018\u02bc`\u00b4]")
_DECIMAL_RE = re.compile(r"(?<=\d)[.,](?=\d)")
#: Sentence ends and clause breaks (comma-like punctuation; a dash between spaces is one too).
_SENTENCE_CHARS = ".!?;\n\r\u2026\u3002"
_CLAUSE_CHARS = ",:()[]\u2013\u2014"
_SPACE_CHARS = '-/+&"*#~=%<>|\\'
_NON_WORD_RE = re.compile(r"[^\w\x01\x02]+|_+")
#: Anything but plain words: other symbols, non-ASCII letters, digits glued to letters.
_MESSY_RE = re.compile(r"[^\sa-z0-9\x01\x02]|\d[a-z]|[a-z]{2}\d")
_REPEATS_RE = re.compile(r"(\w)\1{2,}")
#: A number glued to a unit is two words ("5m" -> "5 m", "10ft" -> "10 ft"), so "#" patterns see the number.
_DIGIT_LETTER_RE = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z]{2})(?=\d)")

#: Words that may stand between a symptom and a following "fine"/"normal" ("bladder is totally fine").
_POST_FILLERS = frozenset(
    "is are was were be been feel feels feeling felt seem seems seemed all totally completely "
    "perfectly absolutely still both and also working function functions functioning everything "
    "everythings seem the my as".split()
)
#: Words that end a list that a negator in front of a comma reaches over ("no numbness, tingling or ...").
_LIST_WORDS = frozenset({"or", "nor"})
#: A pronoun after a comma means a new statement: "no fever, my groin is numb".
_SUBJECT_WORDS = frozenset(
    "i im ive id my me mine he hes his him she shes her they theyre their we were our it its now today still".split()
)
#: First words that give a term its own polarity: a negator in front of "can't pee" means nothing.
_POLARITY_FIRST = frozenset(
    "no not never cant cannot couldnt unable wont wouldnt didnt doesnt dont isnt arent havent hasnt "
    "hadnt wasnt werent without nothing none".split()
)

_ANY = "_"
_GAP = ".."
_NUM = "#"
#: Words that stand for a number in "#" patterns ("fell a good few metres", "10 foot").
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty "
    "hundred few couple several dozen half".split()
)
_GAP_MAX = 3
#: How many plain terms one ``a|b c|d`` term may stand for.
_MAX_EXPANSION = 400


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:MAX_SCAN_CHARS]).casefold()
    if not text.isascii():
        text = _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text))
    text = _APOSTROPHES_RE.sub("", text)
    return _DECIMAL_RE.sub(" ", text)


def _norm_word(word: str) -> list[str]:
    word = _REPEATS_RE.sub(r"\1\1", word)
    return _DIGIT_LETTER_RE.sub(" ", word).split()


_WORD_CHUNK_RE = re.compile(r"[^\W_]+")


@lru_cache(maxsize=65536)
def _part_words(part: str) -> tuple[_Word, ...] | str:
    """One whitespace-separated piece of a term as pattern words, or what is wrong with it (cached)."""
    if part in (_ANY, _GAP, _NUM):
        return (_Word({_ANY: "any", _GAP: "gap", _NUM: "number"}[part]),)
    prefix = part.endswith("*")
    body = part[:-1] if prefix else part
    if "*" in body:
        return "'*' may only end a word (like numb*)"
    normed = _term_words(body)
    if not normed:
        return f"{part!r} has no letters or digits"
    if prefix and len(normed) > 1:
        return f"{part!r} is not one word"
    if prefix and len(normed[0]) < 3:
        return f"a prefix needs at least 3 letters ({part!r})"
    return tuple(_Word("prefix" if prefix else "exact", w) for w in normed)


@lru_cache(maxsize=65536)
def _term_words(body: str) -> tuple[str, ...]:
    """The words one pattern word stands for (cached: catalogues repeat the same words thousands of times)."""
    return tuple(w for chunk in _norm_word(_fold(body).strip()) for w in _WORD_CHUNK_RE.findall(chunk))


@dataclass(slots=True)
class _Tokens:
    words: list[str]
    sentence: list[int]  # sentence number of each word
    clause: list[int]  # clause number (split at punctuation) of each word


def _tokenize(text: str) -> _Tokens:
    folded = _fold(text)
    for ch in _SENTENCE_CHARS:
        if ch in folded:
            folded = folded.replace(ch, "\x01")
    for ch in _CLAUSE_CHARS:
        if ch in folded:
            folded = folded.replace(ch, "\x02")
    if " - " in folded:
        folded = folded.replace(" - ", "\x02")
    for ch in _SPACE_CHARS:
        if ch in folded:
            folded = folded.replace(ch, " ")
    if _MESSY_RE.search(folded) is not None:  # not just plain lower-case ASCII words
        folded = _DIGIT_LETTER_RE.sub(" ", _NON_WORD_RE.sub(" ", folded))
    words: list[str] = []
    sentence: list[int] = []
    clause: list[int] = []
    s = c = 0
    for sent_text in folded.split("\x01"):
        for clause_text in sent_text.split("\x02"):
            ws = clause_text.split()
            if ws:
                words.extend(ws)
                sentence.extend([s] * len(ws))
                clause.extend([c] * len(ws))
                c += 1
        if words and sentence[-1] == s:
            s += 1
    return _Tokens(words, sentence, clause)


# --- patterns ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Word:
    kind: str  # "exact" | "prefix" | "any" | "gap" | "number"
    text: str = ""


@dataclass(slots=True, eq=False)
class _Term:  # not frozen: tens of thousands are built per load, and frozen init is several times slower
    words: tuple[_Word, ...]
    concept: str
    polarity: bool  # starts with its own negation ("can't pee"): immune to negators in front
    pids: tuple[int, ...] = ()  # compiled word pattern ids; _ANY_PID / _GAP_PID / _NUM_PID for wildcards


_ANY_PID = -1
_GAP_PID = -2
_NUM_PID = -3
_WILD_PIDS = {"any": _ANY_PID, "gap": _GAP_PID, "number": _NUM_PID}


@dataclass(frozen=True, slots=True)
class _Concept:
    name: str
    past_ok: bool = False  # a resolution marker ("fine now") does not cancel it


@dataclass(frozen=True, slots=True)
class _Rule:
    concepts: tuple[str, ...]
    unless: tuple[str, ...]
    scope: str | int  # "sentence" | "message" | window size in words
    line: int


@dataclass(frozen=True, slots=True)
class RedFlagCategory:
    """One catalogue category: what to say when one of its rules fires."""

    id: str
    level: EscalationLevel
    title: str
    message: str

    def render(self, *, emergency_number: str, crisis_line: str) -> str:
        """The message with ``{emergency_number}`` and ``{crisis_line}`` filled in."""
        return self.message.replace("{emergency_number}", emergency_number).replace("{crisis_line}", crisis_line)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """Why a category fired (for ``explain``): the rule's line in the YAML and the words matched."""

    category: str
    level: EscalationLevel
    rule_line: int
    words: tuple[str, ...]


@dataclass(slots=True)
class _Hit:
    concept: str
    start: int
    end: int  # exclusive
    polarity: bool


# Special concepts used by the machinery itself.
_NEG = "@negators"
_POST = "@post_negators"
_RESOLVED = "@resolved"
_NOT_NEG = "@not_negations"
_BREAK = "@clause_breaks"
_HYPO = "@hypothetical"
_OTHERS = "@other_people"
_HISTORY = "@history_markers"
_ABOUT_THEM = "@about_them"
_SPECIAL_KEYS = {
    "negators": _NEG,
    "post_negators": _POST,
    "resolved": _RESOLVED,
    "not_negations": _NOT_NEG,
    "clause_breaks": _BREAK,
    "hypothetical": _HYPO,
    "other_people": _OTHERS,
    "history_markers": _HISTORY,
    "about_them": _ABOUT_THEM,
}
#: How close "had" must follow the person ("my mum (65) had"), and the symptom follow "had".
_OTHER_GAP = 3
#: How far another person may stand before a symptom and still be its subject ("my mate just passed out").
_SUBJECT_GAP = 2
_HISTORY_REACH = 7
#: A first-person word between "my dad had" and the symptom makes the symptom the writer's own.
_FIRST_PERSON = frozenset("i im ive id me my mine myself".split())
#: Next to the event, these make it current ("my son had a crash today"), so it counts.
_NOW_WORDS = frozenset("today tonight yesterday now morning afternoon evening earlier minutes".split())


@dataclass(slots=True)
class _Settings:
    negation_window: int = 6
    post_window: int = 5
    fuzzy_min_length: int = 6
    fuzzy_two_edits_length: int = 10


@dataclass(slots=True)
class _Compiled:
    """The matcher: word patterns, terms indexed by their first word, fuzzy buckets."""

    settings: _Settings
    exact: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    patterns: list[_Word] = field(default_factory=list)
    single: dict[int, list[_Term]] = field(default_factory=dict)  # one-word terms by their word
    pair: dict[tuple[int, int], list[_Term]] = field(default_factory=dict)  # by first two words
    # Second word is _, .. or #: indexed by the first word and the next word that is not _ or .. (a term never
    # ends with those), so only the terms whose next word is near are tried.
    wild: dict[tuple[int, int], list[_Term]] = field(default_factory=dict)
    wild_first: dict[int, int] = field(default_factory=dict)  # first word -> how far its next word may be
    fuzzy_exact: dict[tuple[str, int], list[tuple[str, int]]] = field(default_factory=dict)  # (letter, len)
    fuzzy_prefix: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    real_words: frozenset[str] = frozenset()
    max_prefix: int = 0
    cache: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def pattern_id(self, word: _Word) -> int:
        table = self.exact if word.kind == "exact" else self.prefixes
        pid = table.get(word.text)
        if pid is None:
            pid = len(self.patterns)
            self.patterns.append(word)
            table[word.text] = pid
            if word.kind == "prefix":
                self.max_prefix = max(self.max_prefix, len(word.text))
        return pid

    def add_term(self, term: _Term) -> None:
        pids = tuple(_WILD_PIDS.get(w.kind) or self.pattern_id(w) for w in term.words)
        term.pids = pids
        if len(pids) == 1:
            self.single.setdefault(pids[0], []).append(term)
        elif pids[1] < 0:
            reach = 0
            for pid in pids[1:]:
                if pid == _GAP_PID:
                    reach += _GAP_MAX
                elif pid == _ANY_PID:
                    reach += 1
                else:
                    self.wild.setdefault((pids[0], pid), []).append(term)
                    self.wild_first[pids[0]] = max(self.wild_first.get(pids[0], 0), reach + 1)
                    break
        else:
            self.pair.setdefault((pids[0], pids[1]), []).append(term)

    def finish(self, real_words: Iterable[str]) -> None:
        known = set(self.exact) | set(real_words)
        self.real_words = frozenset(known)
        for text, pid in self.exact.items():
            if len(text) >= self.settings.fuzzy_min_length and text.isalpha():
                self.fuzzy_exact.setdefault((text[0], len(text)), []).append((text, pid))
        for text, pid in self.prefixes.items():
            if len(text) >= self.settings.fuzzy_min_length and text.isalpha():
                self.fuzzy_prefix.setdefault(text[0], []).append((text, pid))

    def word_matches(self, raw: str) -> tuple[int, ...]:
        cached = self.cache.get(raw)
        if cached is not None:
            return cached
        token = _REPEATS_RE.sub(r"\1\1", raw) if len(raw) > 2 else raw
        found: list[int] = []
        pid = self.exact.get(token)
        if pid is not None:
            found.append(pid)
        for n in range(2, min(len(token), self.max_prefix) + 1):
            pid = self.prefixes.get(token[:n])
            if pid is not None:
                found.append(pid)
        st = self.settings
        size = len(token)
        if size >= st.fuzzy_min_length - 1 and token not in self.real_words and token.isalpha():
            first = token[0]
            for length in range(size - 2, size + 3):
                if length < st.fuzzy_min_length:
                    continue
                limit = 1 if length < st.fuzzy_two_edits_length else 2
                if abs(length - size) > limit:
                    continue
                for text, pid in self.fuzzy_exact.get((first, length), ()):
                    if pid not in found and Levenshtein.distance(token, text, score_cutoff=limit) <= limit:
                        found.append(pid)
            for text, pid in self.fuzzy_prefix.get(first, ()):
                n = len(text)
                if pid in found or size < n - 1:
                    continue
                if (
                    Levenshtein.distance(token[:n], text, score_cutoff=1) <= 1
                    or Levenshtein.distance(token[: n - 1], text, score_cutoff=1) <= 1
                    or Levenshtein.distance(token[: n + 1], text, score_cutoff=1) <= 1
                ):
                    found.append(pid)
        if token.isdigit() or token in _NUMBER_WORDS:
            found.append(_NUM_PID)
        result = tuple(found)
        if len(self.cache) > 20000:
            self.cache.clear()
        self.cache[raw] = result
        return result

    def find(self, toks: _Tokens) -> list[_Hit]:
        """Every occurrence of every term (the first match for each term and start word)."""
        matched = [self.word_matches(w) for w in toks.words]
        clause = toks.clause
        n = len(matched)
        hits: list[_Hit] = []
        single, pair, wild, wild_first = self.single, self.pair, self.wild, self.wild_first
        for i, here in enumerate(matched):
            if not here:
                continue
            for pid in here:
                for term in single.get(pid, ()):
                    hits.append(_Hit(term.concept, i, i + 1, term.polarity))
                reach = wild_first.get(pid)
                if reach is not None:
                    near: set[int] = set()
                    for j in range(i + 1, min(n, i + 1 + reach)):
                        if clause[j] != clause[i]:
                            break
                        near.update(matched[j])
                    for pid2 in near:
                        for term in wild.get((pid, pid2), ()):
                            end = _match_from(term.pids, 1, i + 1, matched, clause, clause[i])
                            if end is not None:
                                hits.append(_Hit(term.concept, i, end, term.polarity))
            if i + 1 >= n or clause[i + 1] != clause[i]:
                continue
            following = matched[i + 1]
            for pid in here:
                for pid2 in following:
                    for term in pair.get((pid, pid2), ()):
                        end = _match_from(term.pids, 2, i + 2, matched, clause, clause[i])
                        if end is not None:
                            hits.append(_Hit(term.concept, i, end, term.polarity))
        return hits


def _match_from(
    pids: tuple[int, ...], k: int, pos: int, matched: list[tuple[int, ...]], clause: list[int], cl: int
) -> int | None:
    """Match ``pids[k:]`` starting at word ``pos`` inside clause ``cl``; the end position or None."""
    n = len(matched)
    while k < len(pids):
        pid = pids[k]
        if pid == _GAP_PID:
            for skip in range(_GAP_MAX + 1):
                p = pos + skip
                if p > n or (skip and clause[p - 1] != cl):
                    return None
                end = _match_from(pids, k + 1, p, matched, clause, cl)
                if end is not None:
                    return end
            return None
        if pos >= n or clause[pos] != cl:
            return None
        if pid != _ANY_PID and pid not in matched[pos]:
            return None
        k += 1
        pos += 1
    return pos


# --- the detector --------------------------------------------------------------------------------


class RedFlagDetector:
    """Finds red-flag categories in a message. Build it with :func:`parse_red_flags`."""

    categories: Mapping[str, RedFlagCategory]

    def __init__(
        self,
        categories: Sequence[RedFlagCategory],
        rules: Mapping[str, Sequence[_Rule]],
        concepts: Mapping[str, _Concept],
        compiled: _Compiled,
    ) -> None:
        ordered = sorted(categories, key=lambda c: _LEVEL_RANK[c.level])  # stable: file order within a level
        self.categories = MappingProxyType({c.id: c for c in ordered})
        self._rules = {cid: tuple(rules[cid]) for cid in self.categories}
        self._concepts = dict(concepts)
        self._m = compiled

    # public API

    def detect(self, text: str) -> Escalation | None:
        """The most severe category the message describes (emergency before urgent), or None."""
        hits = self.detect_all(text)
        return hits[0] if hits else None

    def detect_all(self, text: str) -> list[Escalation]:
        """Every category the message describes, most severe first."""
        return [Escalation(level=h.level, category=h.category) for h in self._first_hits(text)]

    def explain(self, text: str) -> list[RuleHit]:
        """Which rule fired for each category (one per category), for moderators and tests."""
        return self._first_hits(text)

    # machinery

    def _first_hits(self, text: str) -> list[RuleHit]:
        try:
            if not isinstance(text, str) or not text.strip():
                return []
            return self._evaluate(text)
        except Exception:  # pragma: no cover - a bug here must never take the bot down
            return []

    def _evaluate(self, text: str) -> list[RuleHit]:
        toks = _tokenize(text)
        if not toks.words:
            return []
        hits = self._m.find(toks)
        if not hits:
            return []
        ctx = _Context(self, toks, hits)
        if not ctx.raw:
            return []
        out: list[RuleHit] = []
        for cid, cat in self.categories.items():
            for rule in self._rules[cid]:
                if not all(c in ctx.raw for c in rule.concepts):
                    continue
                combo = _fire(rule, ctx, toks)
                if combo is not None:
                    words = tuple(" ".join(toks.words[h.start : h.end]) for h in combo)
                    out.append(RuleHit(cid, cat.level, rule.line, words))
                    break
        return out


def _negated_before(
    h: _Hit,
    toks: _Tokens,
    neg_end: Mapping[int, _Hit],
    breaks: set[int],
    free: Any,
    window: int,
) -> bool:
    sent = toks.sentence[h.start]
    seen_subject = False
    j = h.start - 1
    steps = 0
    while j >= 0 and steps < window and toks.sentence[j] == sent:
        if j + 1 in breaks and j + 1 <= h.start:  # "but", "although" ... start a new clause
            return False
        if toks.clause[j] != toks.clause[j + 1]:
            # A comma between: reach over it only for a list ("no numbness, tingling or weakness").
            if seen_subject or not _list_follows(toks, j + 1):
                return False
        if toks.words[j] == "and" and j + 1 < h.start and toks.words[j + 1] in _SUBJECT_WORDS:
            return False  # "lost 6 kilos without trying and my back hurts": a new statement
        neg = neg_end.get(j)
        if neg is not None and free(neg):
            return True
        if toks.words[j] in _SUBJECT_WORDS:
            seen_subject = True
        j -= 1
        steps += 1
    return False


def _negated_after(
    h: _Hit,
    toks: _Tokens,
    post_start: Mapping[int, _Hit],
    covered: list[bool],
    free: Any,
    window: int,
) -> bool:
    clause = toks.clause[h.start]
    j = h.end
    n = len(toks.words)
    while j < n and j - h.end <= window and toks.clause[j] == clause:
        post = post_start.get(j)
        if post is not None and free(post):
            return True
        if not covered[j] and toks.words[j] not in _POST_FILLERS:
            return False
        j += 1
    return False


def _fire(rule: _Rule, ctx: _Context, toks: _Tokens) -> list[_Hit] | None:
    pools = [ctx.valid(c) for c in rule.concepts]
    if not all(pools):
        return None
    blockers = [h for name in rule.unless if name in ctx.raw for h in ctx.valid(name)]
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


class _Context:
    """One message's term hits, with negation worked out lazily per concept (most are never needed)."""

    def __init__(self, det: RedFlagDetector, toks: _Tokens, hits: list[_Hit]) -> None:
        n = len(toks.words)
        self.det = det
        self.toks = toks
        self.covered = [False] * n  # words inside a symptom term or a not-negation phrase
        self.pseudo = [False] * n  # words inside a not-negation phrase ("not normal", "is that normal")
        self.neg_end: dict[int, _Hit] = {}
        self.post_start: dict[int, _Hit] = {}
        self.breaks: set[int] = set()
        self.resolved: list[_Hit] = []
        self.hypo: list[_Hit] = []
        self.history: list[_Hit] = []
        self.others_end: set[int] = set()
        self.about_them: list[_Hit] = []
        self._theirs: bool | None = None
        self.raw: dict[str, list[_Hit]] = {}
        self._valid: dict[str, list[_Hit]] = {}
        for h in hits:
            c = h.concept
            if c == _NEG:
                self.neg_end.setdefault(h.end - 1, h)
            elif c == _POST:
                self.post_start.setdefault(h.start, h)
            elif c == _BREAK:
                self.breaks.add(h.start)
            elif c == _RESOLVED:
                self.resolved.append(h)
            elif c == _HYPO:
                self.hypo.append(h)
            elif c == _HISTORY:
                self.history.append(h)
            elif c == _OTHERS:
                self.others_end.add(h.end)
            elif c == _ABOUT_THEM:
                self.about_them.append(h)
            else:
                for i in range(h.start, h.end):
                    self.covered[i] = True
                if c == _NOT_NEG:
                    for i in range(h.start, h.end):
                        self.pseudo[i] = True
                else:
                    self.raw.setdefault(c, []).append(h)

    def free(self, h: _Hit) -> bool:
        return not any(self.covered[h.start : h.end])

    def real(self, h: _Hit) -> bool:
        return not any(self.pseudo[h.start : h.end])

    def valid(self, concept: str) -> list[_Hit]:
        found = self._valid.get(concept)
        if found is None:
            found = [h for h in self.raw.get(concept, ()) if self._counts(h)]
            self._valid[concept] = found
        return found

    def _counts(self, h: _Hit) -> bool:
        det, toks = self.det, self.toks
        st = det._m.settings
        if not h.polarity and _negated_before(h, toks, self.neg_end, self.breaks, self.free, st.negation_window):
            return False
        if _negated_after(h, toks, self.post_start, self.covered, self.real, st.post_window):
            return False
        if not det._concepts[h.concept].past_ok:
            sent = toks.sentence[h.start]
            for r in self.resolved:
                if r.start >= h.end and toks.sentence[r.start] == sent and self.real(r):
                    return False
        if self.resolved and self.others_end and self._theirs_and_over(h):
            return False
        if self.hypo and self._hypothetical(h):
            return False
        if self.history and self.others_end and self._someone_elses_past(h):
            return False
        return True

    def _theirs_and_over(self, h: _Hit) -> bool:
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
        if self.det._concepts[h.concept].past_ok and self._now_after(over[0].end):
            # "my mum had cancer treatment last year and now she has new back pain": the history is the point,
            # and the message goes on about that person now.
            return False
        return True

    def _now_after(self, start: int) -> bool:
        """A word like "now"/"today" after ``start`` that is not inside a resolved phrase ("fine now")."""
        words = self.toks.words
        for j in range(start, len(words)):
            if words[j] in _NOW_WORDS and not any(r.start <= j < r.end for r in self.resolved):
                return True
        return False

    def _hypothetical(self, h: _Hit) -> bool:
        """After "what are the signs of", "if i ever get" ... in the same sentence (up to a "but")."""
        toks = self.toks
        sent = toks.sentence[h.start]
        for r in self.hypo:
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
            if words[j] in _SUBJECT_WORDS and (clause[j] != clause[j - 1] or words[j - 1] == "and"):
                return False
        return True

    def _someone_elses_past(self, h: _Hit) -> bool:
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


def _list_follows(toks: _Tokens, start: int) -> bool:
    """After the comma at ``start``: does an "or"/"nor" come before the sentence ends?"""
    sent = toks.sentence[start]
    for j in range(start, min(len(toks.words), start + 12)):
        if toks.sentence[j] != sent:
            return False
        if toks.words[j] in _LIST_WORDS:
            return True
    return False


# --- loading and validation ----------------------------------------------------------------------

_TOP_KEYS = frozenset({"version", "settings", "real_words", "concepts", "categories", *_SPECIAL_KEYS})
_SETTING_KEYS = frozenset({"negation_window", "post_window", "fuzzy_min_length", "fuzzy_two_edits_length"})
_CATEGORY_KEYS = frozenset({"id", "level", "title", "message", "source", "rules"})
_RULE_KEYS = frozenset({"all", "unless", "within"})
_CONCEPT_KEYS = frozenset({"terms", "past_ok", "note"})


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.terms: list[_Term] = []
        self.concepts: dict[str, _Concept] = {}
        self.anon = 0
        self.polarity_words: set[str] = set(_POLARITY_FIRST)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def expand_term(self, raw: Any, line: int) -> list[str] | None:
        """``pee|wee .. cloudy|smell*`` -> every combination of the alternatives, as plain terms."""
        if not isinstance(raw, str):
            self.problem(line, f"a term must be text, not {_type_name(raw)}")
            return None
        if "|" not in raw:
            return [raw]
        choices: list[list[str]] = []
        for part in raw.split():
            alts = part.split("|")
            if any(not a for a in alts):
                self.problem(line, f"bad pattern {raw!r}: empty alternative in {part!r} (write a|b|c)")
                return None
            if len(alts) > 1 and any(a in (_ANY, _GAP, _NUM) for a in alts):
                self.problem(line, f"bad pattern {raw!r}: '_', '..' and '#' cannot be alternatives")
                return None
            choices.append(alts)
        count = 1
        for alts in choices:
            count *= len(alts)
        if count > _MAX_EXPANSION:
            self.problem(line, f"bad pattern {raw!r}: {count} combinations (at most {_MAX_EXPANSION})")
            return None
        return [" ".join(combo) for combo in product(*choices)]

    def parse_term(self, raw: Any, line: int, concept: str) -> _Term | None:
        if not isinstance(raw, str):
            self.problem(line, f"a term must be text, not {_type_name(raw)}")
            return None
        words: list[_Word] = []
        for part in raw.split():
            parsed = _part_words(part)
            if isinstance(parsed, str):
                self.problem(line, f"bad pattern {raw!r}: {parsed}")
                return None
            words.extend(parsed)
        if not words:
            self.problem(line, "empty term")
            return None
        if words[0].kind in ("any", "gap") or words[-1].kind in ("any", "gap"):
            self.problem(line, f"bad pattern {raw!r}: '_' and '..' may only stand between words")
            return None
        polarity = words[0].kind == "exact" and words[0].text in self.polarity_words
        return _Term(tuple(words), concept, polarity)

    def add_terms(self, items: Any, line: int, concept: str, where: str) -> int:
        if not isinstance(items, list):
            self.problem(line, f"{where} must be a list of terms, not {_type_name(items)}")
            return 0
        if not items:
            self.problem(line, f"{where} is empty")
            return 0
        count = 0
        for i, raw in enumerate(items):
            iline = _item_line(items, i, line)
            for text in self.expand_term(raw, iline) or ():
                term = self.parse_term(text, iline, concept)
                if term is not None:
                    self.terms.append(term)
                    count += 1
        return count


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _key_line(d: Any, key: str, default: int) -> int:
    if isinstance(d, LDict):
        return d.line_of(key) or default
    return default


def _item_line(seq: Any, i: int, default: int) -> int:
    if isinstance(seq, LList):
        return seq.line_of(i) or default
    return default


def parse_red_flags(data: Any, file: str) -> tuple[RedFlagDetector | None, list[Problem]]:
    """Validate the parsed ``red_flags.yaml`` and build the detector.

    Returns ``(None, problems)`` when anything is wrong; every problem names the line.
    """
    b = _Builder(file)
    top = line_of(data)
    if not isinstance(data, dict):
        b.problem(top, f"the red-flag file must be a mapping with 'categories', not {_type_name(data)}")
        return None, b.problems
    for key in data:
        if key not in _TOP_KEYS:
            b.problem(
                _key_line(data, key, top), f"unknown key '{key}' (expected one of: {', '.join(sorted(_TOP_KEYS))})"
            )

    settings = _Settings()
    raw_settings = data.get("settings")
    if raw_settings is not None:
        sline = _key_line(data, "settings", top)
        if not isinstance(raw_settings, dict):
            b.problem(sline, f"'settings' must be a mapping, not {_type_name(raw_settings)}")
        else:
            for key, value in raw_settings.items():
                kline = _key_line(raw_settings, key, sline)
                if key not in _SETTING_KEYS:
                    b.problem(kline, f"unknown setting '{key}' (expected one of: {', '.join(sorted(_SETTING_KEYS))})")
                elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 30:
                    b.problem(kline, f"setting '{key}' must be a whole number from 1 to 30")
                else:
                    setattr(settings, key, value)

    real_words: list[str] = []
    if "real_words" in data:
        rline = _key_line(data, "real_words", top)
        raw_real = data["real_words"]
        if not isinstance(raw_real, list):
            b.problem(rline, f"'real_words' must be a list of words, not {_type_name(raw_real)}")
        else:
            for i, w in enumerate(raw_real):
                if not isinstance(w, str) or len(w.split()) != 1:
                    b.problem(_item_line(raw_real, i, rline), "each entry of 'real_words' must be one word")
                else:
                    real_words.extend(_norm_word(_fold(w).strip()))

    for key, special in _SPECIAL_KEYS.items():
        if key in data:
            b.add_terms(data[key], _key_line(data, key, top), special, f"'{key}'")
            b.concepts[special] = _Concept(special)
            if special == _NEG:  # a term starting with a negator carries its own polarity ("nearly fainted")
                b.polarity_words.update(t.words[0].text for t in b.terms if t.concept == _NEG and len(t.words) == 1)
        elif key == "negators":
            b.problem(top, "missing 'negators' (the words that cancel a symptom after them, like 'no', 'not')")

    raw_concepts = data.get("concepts")
    cline = _key_line(data, "concepts", top)
    if raw_concepts is None:
        raw_concepts = {}
    elif not isinstance(raw_concepts, dict):
        b.problem(cline, f"'concepts' must be a mapping of name -> terms, not {_type_name(raw_concepts)}")
        raw_concepts = {}
    used: set[str] = set()
    for name, spec in raw_concepts.items():
        nline = _key_line(raw_concepts, name, cline)
        if not _CONCEPT_RE.match(name):
            b.problem(nline, f"concept name '{name}' must be lowercase letters, digits and _ (like saddle_area)")
            continue
        past_ok = False
        terms = spec
        if isinstance(spec, dict):
            for key in spec:
                if key not in _CONCEPT_KEYS:
                    b.problem(_key_line(spec, key, nline), f"unknown key '{key}' in concept '{name}'")
            if "terms" not in spec:
                b.problem(nline, f"concept '{name}' has no 'terms'")
                continue
            terms = spec["terms"]
            flag = spec.get("past_ok", False)
            if not isinstance(flag, bool):
                b.problem(_key_line(spec, "past_ok", nline), f"'past_ok' in concept '{name}' must be true or false")
            else:
                past_ok = flag
        b.add_terms(
            terms, nline if not isinstance(spec, dict) else _key_line(spec, "terms", nline), name, f"concept '{name}'"
        )
        b.concepts[name] = _Concept(name, past_ok)

    raw_cats = data.get("categories")
    catline = _key_line(data, "categories", top)
    categories: list[RedFlagCategory] = []
    rules: dict[str, list[_Rule]] = {}
    if raw_cats is None:
        b.problem(top, "missing 'categories'")
        raw_cats = []
    elif not isinstance(raw_cats, list):
        b.problem(catline, f"'categories' must be a list, not {_type_name(raw_cats)}")
        raw_cats = []
    elif not raw_cats:
        b.problem(catline, "'categories' is empty")
    seen_ids: dict[str, int] = {}
    for ci, cat in enumerate(raw_cats):
        line = _item_line(raw_cats, ci, catline)
        parsed = _parse_category(b, cat, line, seen_ids, used)
        if parsed is not None:
            categories.append(parsed[0])
            rules[parsed[0].id] = parsed[1]

    for name in raw_concepts:
        if name in b.concepts and name not in used:
            b.problem(_key_line(raw_concepts, name, cline), f"concept '{name}' is not used by any rule")

    if b.problems:
        return None, sorted(b.problems)
    compiled = _Compiled(settings)
    for term in b.terms:
        compiled.add_term(term)
    compiled.finish(real_words)
    return RedFlagDetector(categories, rules, b.concepts, compiled), []


def _parse_category(
    b: _Builder, cat: Any, line: int, seen_ids: dict[str, int], used: set[str]
) -> tuple[RedFlagCategory, list[_Rule]] | None:
    if not isinstance(cat, dict):
        b.problem(line, f"a category must be a mapping with id, level, title, message, rules; not {_type_name(cat)}")
        return None
    line = line_of(cat, line)
    for key in cat:
        if key not in _CATEGORY_KEYS:
            b.problem(
                _key_line(cat, key, line), f"unknown key '{key}' (expected one of: {', '.join(sorted(_CATEGORY_KEYS))})"
            )
    ok = True
    cid = cat.get("id")
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        b.problem(_key_line(cat, "id", line), "category 'id' must be kebab-case text, like cauda-equina")
        ok = False
    elif cid in seen_ids:
        b.problem(_key_line(cat, "id", line), f"duplicate category id '{cid}' (first on line {seen_ids[cid]})")
        ok = False
    else:
        seen_ids[cid] = _key_line(cat, "id", line)
    level = cat.get("level")
    if level not in LEVELS:
        b.problem(_key_line(cat, "level", line), f"bad level {level!r}: must be 'emergency' or 'urgent'")
        ok = False
    texts: dict[str, str] = {}
    for key in ("title", "message"):
        value = cat.get(key)
        if value is None:
            b.problem(line, f"category '{cid}' is missing '{key}'")
            ok = False
        elif not isinstance(value, str) or not value.strip():
            b.problem(_key_line(cat, key, line), f"'{key}' must be non-empty text")
            ok = False
        else:
            texts[key] = value.strip()
    if "message" in texts:
        if "{" in _PLACEHOLDER_RE.sub("", texts["message"]) or "}" in _PLACEHOLDER_RE.sub("", texts["message"]):
            b.problem(_key_line(cat, "message", line), "unmatched { or } in message")
            ok = False
        for ph in _PLACEHOLDER_RE.findall(texts["message"]):
            if ph not in _PLACEHOLDERS:
                b.problem(
                    _key_line(cat, "message", line),
                    f"unknown placeholder {{{ph}}} in message (use {{emergency_number}} or {{crisis_line}})",
                )
                ok = False
    if "source" in cat and not (isinstance(cat["source"], str) and cat["source"].strip()):
        b.problem(_key_line(cat, "source", line), "'source' must be non-empty text")
    raw_rules = cat.get("rules")
    rline = _key_line(cat, "rules", line)
    parsed_rules: list[_Rule] = []
    if raw_rules is None:
        b.problem(line, f"category '{cid}' has no 'rules'")
        ok = False
    elif not isinstance(raw_rules, list) or not raw_rules:
        b.problem(rline, "'rules' must be a non-empty list")
        ok = False
    else:
        for ri, rule in enumerate(raw_rules):
            parsed = _parse_rule(b, rule, _item_line(raw_rules, ri, rline), used)
            if parsed is None:
                ok = False
            else:
                parsed_rules.append(parsed)
    if not ok:
        return None
    assert isinstance(cid, str) and level in LEVELS
    return RedFlagCategory(cid, level, texts["title"], texts["message"]), parsed_rules


def _parse_rule(b: _Builder, rule: Any, line: int, used: set[str]) -> _Rule | None:
    spec: Any = rule
    if isinstance(rule, list):
        spec = {"all": rule}
    elif isinstance(rule, dict):
        line = line_of(rule, line)
        for key in rule:
            if key not in _RULE_KEYS:
                b.problem(_key_line(rule, key, line), f"unknown key '{key}' in rule (expected all, unless, within)")
                return None
    else:
        b.problem(line, f"a rule must be a list of concepts or a mapping with 'all'; not {_type_name(rule)}")
        return None
    if "all" not in spec:
        b.problem(line, "rule has no 'all'")
        return None
    concepts = _concept_refs(b, spec["all"], _key_line(spec, "all", line), used, "all")
    unless: tuple[str, ...] | None = ()
    if "unless" in spec:
        unless = _concept_refs(b, spec["unless"], _key_line(spec, "unless", line), used, "unless")
    scope: str | int = "sentence"
    if "within" in spec:
        w = spec["within"]
        if w in ("sentence", "message"):
            scope = w
        elif isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 50:
            scope = w
        else:
            b.problem(
                _key_line(spec, "within", line), "'within' must be 'sentence', 'message' or a number of words (1-50)"
            )
            return None
    if concepts is None or unless is None:
        return None
    return _Rule(concepts, unless, scope, line)


def _concept_refs(b: _Builder, raw: Any, line: int, used: set[str], where: str) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or not raw:
        b.problem(line, f"'{where}' must be a non-empty list of concept names or term lists")
        return None
    out: list[str] = []
    ok = True
    for i, item in enumerate(raw):
        iline = _item_line(raw, i, line)
        if isinstance(item, str):
            if item not in b.concepts or item.startswith("@"):
                b.problem(iline, f"unknown concept '{item}' (define it under 'concepts', or write a list of terms)")
                ok = False
            else:
                used.add(item)
                out.append(item)
        elif isinstance(item, list):
            b.anon += 1
            name = f"~inline{b.anon}@{iline}"
            if b.add_terms(item, iline, name, "an inline term list") == 0:
                ok = False
            b.concepts[name] = _Concept(name)
            out.append(name)
        else:
            b.problem(iline, f"rule entries must be concept names or lists of terms, not {_type_name(item)}")
            ok = False
    return tuple(out) if ok else None
