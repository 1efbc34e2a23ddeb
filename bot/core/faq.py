"""The FAQ matcher: an inverted index over weighted terms, fuzzy term lookup with rapidfuzz, phrase similarity.

Why not plain WRatio over all phrasings: it scores almost every chat message 85-100 against everything and its cost
grows with the FAQ. Here rare, topical terms (cadence, sciatica, trainers) count for more than common ones (back,
pain, running); a message only meets the entries that share a term with it, so the cost follows the message, not the
size of the FAQ; rapidfuzz forgives typos in a term and scores the wording against the best phrasings.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from bot.core.analysis import Analyzer, bigrams
from bot.core.text import normalize

KEYWORD_STRENGTH = 1.0
QUESTION_STRENGTH = 0.85
#: weight of a word the FAQ does not know at all (names, places, club chatter)
UNKNOWN_WEIGHT = 1.2
#: bigrams add evidence on top of their words
BIGRAM_FACTOR = 0.6
#: a term in more entries than this (and this share of the FAQ) only adds to entries rarer terms found
COMMON_MIN_ENTRIES = 200
COMMON_SHARE = 0.02
#: candidates within this many points of the best are re-ranked by their raw wording
TIE_MARGIN = 3.0
#: from this many entries on, the wording check looks at ``shortlist_large`` candidates
LARGE_FAQ = 1000


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """What the matcher needs of one FAQ entry."""

    id: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One scored entry: confidence 0-100."""

    id: str
    confidence: float
    lexical: float
    phrase: float


@dataclass(frozen=True, slots=True)
class MatchParams:
    """Tunable weights of the scorer (the defaults are what the shipped knowledge was tuned with)."""

    saturation: float = 4.5
    coverage_power: float = 0.3
    phrase_weight: float = 0.3
    fuzzy_cutoff: float = 84.0
    shortlist: int = 12
    shortlist_large: int = 30


class FaqMatcher:
    """Built once per knowledge load; ``match`` is pure and safe to call from many tasks."""

    def __init__(self, entries: Sequence[IndexedEntry], analyzer: Analyzer, params: MatchParams | None = None):
        self.analyzer = analyzer
        self.params = params or MatchParams()
        self.ids: tuple[str, ...] = tuple(e.id for e in entries)
        self._index = {entry_id: i for i, entry_id in enumerate(self.ids)}
        postings: dict[str, dict[int, float]] = defaultdict(dict)
        self._phrases: list[list[str]] = []
        self._questions: list[tuple[str, ...]] = []
        self._raw_cache: dict[int, list[str]] = {}
        for idx, entry in enumerate(entries):
            counts: dict[str, int] = defaultdict(int)
            phrases: list[str] = []
            for q in entry.questions:
                terms = analyzer.terms(q)
                phrases.append(" ".join(terms))
                for feature in {*terms, *bigrams(terms)}:
                    counts[feature] += 1
            strengths: dict[str, float] = {}
            for feature, n in counts.items():
                strengths[feature] = min(1.0, QUESTION_STRENGTH + 0.05 * (n - 1))
            for kw in entry.keywords:
                terms = analyzer.terms(kw)
                phrases.append(" ".join(terms))
                for feature in {*terms, *bigrams(terms)}:
                    strengths[feature] = KEYWORD_STRENGTH
            for feature, strength in strengths.items():
                postings[feature][idx] = strength
            self._phrases.append([p for p in phrases if p])
            self._questions.append(entry.questions)
        n = max(1, len(entries))
        self._postings = {f: tuple(p.items()) for f, p in postings.items()}
        self._posting_maps = postings
        self._common_cap = max(COMMON_MIN_ENTRIES, int(COMMON_SHARE * n))
        self._idf = {f: math.log(1.0 + n / len(p)) for f, p in postings.items()}
        self._vocab_by_len: dict[int, list[str]] = defaultdict(list)
        for f in postings:
            if " " not in f and len(f) >= 4:
                self._vocab_by_len[len(f)].append(f)
        self._expand = lru_cache(maxsize=50_000)(self._expand_uncached)

    def __len__(self) -> int:
        return len(self.ids)

    def _expand_uncached(self, term: str) -> tuple[tuple[str, float], ...]:
        """Known terms this (maybe misspelt) term stands for, with a similarity 0-1."""
        if term in self._postings:
            return ((term, 1.0),)
        if len(term) < 4 or term.isdigit():
            return ()
        cutoff = self.params.fuzzy_cutoff if len(term) < 6 else self.params.fuzzy_cutoff - 4
        found: list[tuple[str, float]] = []
        for length in range(len(term) - 2, len(term) + 3):
            choices = self._vocab_by_len.get(length)
            if not choices:
                continue
            for choice, score, _ in process.extract(
                term, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=3
            ):
                found.append((choice, score / 100.0))
        found.sort(key=lambda x: -x[1])
        return tuple(found[:3])

    def match(self, text: str, limit: int = 3, *, terms: list[str] | None = None) -> list[Candidate]:
        """The best entries for a message, best first; empty when nothing in the FAQ relates to it.

        ``terms`` are the message's analyzed terms when the caller has them already.
        """
        terms = list(dict.fromkeys(self.analyzer.terms(text) if terms is None else terms))
        if not terms:
            return []
        total = 0.0
        weighted: list[tuple[float, tuple[tuple[str, float], ...]]] = []
        for term in terms:
            expansions = self._expand(term)
            if not expansions:
                total += UNKNOWN_WEIGHT
                continue
            weight = max(self._idf[f] * sim for f, sim in expansions)
            total += weight
            weighted.append((weight, expansions))
        # Rare terms first. A common term (in more than `common_cap` entries) only adds to entries that a rarer term
        # already found, so the work follows the message's specific words, not the size of the FAQ.
        weighted.sort(key=lambda item: -item[0])
        unigram: dict[int, float] = defaultdict(float)
        for _, expansions in weighted:
            self._accumulate(unigram, expansions)
        scores = dict(unigram)
        for pair in bigrams(terms):
            if pair in self._postings:
                self._accumulate(scores, ((pair, 1.0),), factor=BIGRAM_FACTOR)
        if not scores:
            return []
        p = self.params
        if len(scores) > 4 * p.shortlist_large:
            scores = {i: scores[i] for i in heapq.nlargest(4 * p.shortlist_large, scores, key=scores.__getitem__)}
        def coverage(idx: int) -> float:
            return unigram.get(idx, 0.0) / total

        lexical = {
            idx: 100.0 * (1.0 - math.exp(-s / p.saturation)) * min(1.0, coverage(idx)) ** p.coverage_power
            for idx, s in scores.items()
        }
        # a large FAQ has more near-alike entries, so the wording check looks at more of them
        size = p.shortlist if len(self.ids) < LARGE_FAQ else p.shortlist_large
        shortlist = heapq.nlargest(size, lexical, key=lexical.__getitem__)
        query = " ".join(terms)
        out: list[Candidate] = []
        for idx in shortlist:
            phrase = 0.0
            if self._phrases[idx]:
                best_phrase = process.extractOne(query, self._phrases[idx], scorer=fuzz.token_sort_ratio)
                phrase = float(best_phrase[1]) if best_phrase else 0.0
            conf = (1.0 - p.phrase_weight) * lexical[idx] + p.phrase_weight * phrase * (lexical[idx] / 100.0) ** 0.25
            out.append(Candidate(self.ids[idx], round(min(100.0, conf), 1), lexical[idx], phrase))
        out.sort(key=lambda c: (-c.confidence, c.id))
        return self._break_ties(text, out)[:limit]

    def known_share(self, terms: Sequence[str]) -> float:
        """The share of a message's terms (repeats counted) that the FAQ knows, typos forgiven; 0 for no terms."""
        if not terms:
            return 0.0
        return sum(1 for term in terms if self._expand(term)) / len(terms)

    def _break_ties(self, text: str, ranked: list[Candidate]) -> list[Candidate]:
        """Entries that score alike once synonyms and stopwords are applied are told apart by the raw wording."""
        if len(ranked) < 2 or ranked[0].confidence - ranked[1].confidence > TIE_MARGIN:
            return ranked
        tied = [c for c in ranked if ranked[0].confidence - c.confidence <= TIE_MARGIN]
        raw = normalize(text)
        index = self._index

        def wording(c: Candidate) -> float:
            idx = index[c.id]
            if idx not in self._raw_cache:  # normalized on first use: nothing extra at load time
                self._raw_cache[idx] = [normalize(q) for q in self._questions[idx]]
            found = process.extractOne(raw, self._raw_cache[idx], scorer=fuzz.token_sort_ratio)
            return float(found[1]) if found else 0.0

        order = sorted(tied, key=lambda c: (-(c.confidence + TIE_MARGIN * wording(c) / 100.0), c.id))
        best = order[0]
        # the winner keeps the group's best confidence: re-ranking never makes the bot more sure than it was
        winner = Candidate(best.id, ranked[0].confidence, best.lexical, best.phrase)
        return [winner, *order[1:], *ranked[len(tied):]]

    def _accumulate(
        self, scores: dict[int, float], expansions: tuple[tuple[str, float], ...], factor: float = 1.0
    ) -> None:
        """Add one term's evidence (its best expansion per entry) to ``scores``."""
        size = sum(len(self._postings[f]) for f, _ in expansions)
        restrict = size > self._common_cap and bool(scores)
        best: dict[int, float] = {}
        for feature, sim in expansions:
            weight = self._idf[feature] * sim * factor
            if restrict:
                lookup = self._posting_maps[feature]
                pairs: Iterable[tuple[int, float]] = (
                    (idx, lookup[idx]) for idx in scores if idx in lookup
                )
            else:
                pairs = self._postings[feature]
            for idx, strength in pairs:
                value = weight * strength
                if value > best.get(idx, 0.0):
                    best[idx] = value
        for idx, value in best.items():
            scores[idx] = scores.get(idx, 0.0) + value
