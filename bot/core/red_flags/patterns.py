"""The pattern language compiled: words, terms, and the matcher that finds every term in a message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from bot.core.red_flags.tokens import Tokens, fold, is_number, norm_word
from bot.core.text import squeeze_repeats

ANY = "_"
GAP = ".."
NUM = "#"
GAP_MAX = 3
#: How many plain terms one ``a|b c|d`` term may stand for.
MAX_EXPANSION = 400
_WORD_CHUNK_RE = re.compile(r"[^\W_]+")


@lru_cache(maxsize=65536)
def part_words(part: str) -> tuple[Word, ...] | str:
    """One whitespace-separated piece of a term as pattern words, or what is wrong with it (cached)."""
    if part in (ANY, GAP, NUM):
        return (Word({ANY: "any", GAP: "gap", NUM: "number"}[part]),)
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
    return tuple(Word("prefix" if prefix else "exact", w) for w in normed)


@lru_cache(maxsize=65536)
def _term_words(body: str) -> tuple[str, ...]:
    """The words one pattern word stands for (cached: catalogues repeat the same words thousands of times)."""
    return tuple(w for chunk in norm_word(fold(body).strip()) for w in _WORD_CHUNK_RE.findall(chunk))


# --- patterns ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    kind: str  # "exact" | "prefix" | "any" | "gap" | "number"
    text: str = ""


@dataclass(slots=True, eq=False)
class Term:  # not frozen: tens of thousands are built per load, and frozen init is several times slower
    words: tuple[Word, ...]
    concept: str
    polarity: bool  # starts with its own negation ("can't pee"): immune to negators in front
    pids: tuple[int, ...] = ()  # compiled word pattern ids; _ANY_PID / _GAP_PID / _NUM_PID for wildcards


_ANY_PID = -1
_GAP_PID = -2
_NUM_PID = -3
_WILD_PIDS = {"any": _ANY_PID, "gap": _GAP_PID, "number": _NUM_PID}



@dataclass(slots=True)
class Hit:
    concept: str
    start: int
    end: int  # exclusive
    polarity: bool



@dataclass(slots=True)
class Settings:
    negation_window: int = 6
    post_window: int = 5
    fuzzy_min_length: int = 6
    fuzzy_two_edits_length: int = 10


@dataclass(slots=True)
class Compiled:
    """The matcher: word patterns, terms indexed by their first word, fuzzy buckets."""

    settings: Settings
    exact: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    patterns: list[Word] = field(default_factory=list)
    single: dict[int, list[Term]] = field(default_factory=dict)  # one-word terms by their word
    pair: dict[tuple[int, int], list[Term]] = field(default_factory=dict)  # by first two words
    # Second word is _, .. or #: indexed by the first word and the next word that is not _ or .. (a term never
    # ends with those), so only the terms whose next word is near are tried.
    wild: dict[tuple[int, int], list[Term]] = field(default_factory=dict)
    wild_first: dict[int, int] = field(default_factory=dict)  # first word -> how far its next word may be
    fuzzy_exact: dict[tuple[str, int], list[tuple[str, int]]] = field(default_factory=dict)  # (letter, len)
    fuzzy_prefix: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    real_words: frozenset[str] = frozenset()
    #: words a ".." gap never skips: "peeing normal no burning" is not "peeing .. burning"
    gap_stops: frozenset[str] = frozenset()
    max_prefix: int = 0
    cache: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def pattern_id(self, word: Word) -> int:
        table = self.exact if word.kind == "exact" else self.prefixes
        pid = table.get(word.text)
        if pid is None:
            pid = len(self.patterns)
            self.patterns.append(word)
            table[word.text] = pid
            if word.kind == "prefix":
                self.max_prefix = max(self.max_prefix, len(word.text))
        return pid

    def add_term(self, term: Term) -> None:
        pids = tuple(_WILD_PIDS.get(w.kind) or self.pattern_id(w) for w in term.words)
        term.pids = pids
        if len(pids) == 1:
            self.single.setdefault(pids[0], []).append(term)
        elif pids[1] < 0:
            reach = 0
            for pid in pids[1:]:
                if pid == _GAP_PID:
                    reach += GAP_MAX
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
        token = squeeze_repeats(raw) if len(raw) > 2 else raw
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
        if is_number(token):
            found.append(_NUM_PID)
        result = tuple(found)
        if len(self.cache) > 20000:
            self.cache.clear()
        self.cache[raw] = result
        return result

    def find(self, toks: Tokens) -> list[Hit]:
        """Every occurrence of every term (the first match for each term and start word)."""
        matched = [self.word_matches(w) for w in toks.words]
        clause = toks.clause
        stops = [w in self.gap_stops for w in toks.words]
        n = len(matched)
        hits: list[Hit] = []
        single, pair, wild, wild_first = self.single, self.pair, self.wild, self.wild_first
        for i, here in enumerate(matched):
            if not here:
                continue
            for pid in here:
                for term in single.get(pid, ()):
                    hits.append(Hit(term.concept, i, i + 1, term.polarity))
                reach = wild_first.get(pid)
                if reach is not None:
                    near: set[int] = set()
                    for j in range(i + 1, min(n, i + 1 + reach)):
                        if clause[j] != clause[i]:
                            break
                        near.update(matched[j])
                    for pid2 in near:
                        for term in wild.get((pid, pid2), ()):
                            end = _match_from(term.pids, 1, i + 1, matched, clause, clause[i], stops)
                            if end is not None:
                                hits.append(Hit(term.concept, i, end, term.polarity))
            if i + 1 >= n or clause[i + 1] != clause[i]:
                continue
            following = matched[i + 1]
            for pid in here:
                for pid2 in following:
                    for term in pair.get((pid, pid2), ()):
                        end = _match_from(term.pids, 2, i + 2, matched, clause, clause[i], stops)
                        if end is not None:
                            hits.append(Hit(term.concept, i, end, term.polarity))
        return hits


def _match_from(
    pids: tuple[int, ...],
    k: int,
    pos: int,
    matched: list[tuple[int, ...]],
    clause: list[int],
    cl: int,
    stops: list[bool],
) -> int | None:
    """Match ``pids[k:]`` starting at word ``pos`` inside clause ``cl``; the end position or None."""
    n = len(matched)
    while k < len(pids):
        pid = pids[k]
        if pid == _GAP_PID:
            for skip in range(GAP_MAX + 1):
                p = pos + skip
                if p > n or (skip and (clause[p - 1] != cl or stops[p - 1])):
                    return None
                end = _match_from(pids, k + 1, p, matched, clause, cl, stops)
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


