"""Turning text into matching terms: normalization, light stemming, synonyms, stopwords."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from bot.core.text import normalize
from bot.core.text import words as text_words

# Function words and chat filler: they say nothing about which answer is wanted.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any anyone anybody anything are as at be because been before
    being below between both but by can could did do does doing dont down during each else even ever every few for
    from further get gets getting got had has have having he her here hers herself him himself his how i id if im in
    into is it its itself ive just know let like ll lot lots me might more most much must my myself need needs now of
    off on once one only or other our ours ourselves out over own please pls plz re really s same say says she should
    so some someone something still such t than thank thanks that thats the their theirs them themselves then there
    these they thing things think this those though through thx to too u ur under until up us ve very was we were
    what whats when where which while who whom why will with would wondering yall you your youre yours yourself
    yourselves ok okay hi hey hello lol haha tbh btw guys folks mate mates anyway also abit bit kinda sorta gonna
    wanna gotta pretty quite maybe probably actually basically literally seem seems seemed tell said ask asking
    question wonder wondered cause go going went
    """.split()
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to join run/runs/running, stretch/stretches, stride/striding."""
    w = word
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("string"):
            w = w[: -len(suffix)]
            if len(w) >= 3 and w[-1] == w[-2] and w[-1] not in "aeiouylsz":
                w = w[:-1]
            break
    if w.endswith(("y", "e")) and len(w) > 4:
        w = w[:-1]
    return w


STOP_STEMS = frozenset(stem(w) for w in STOPWORDS) | STOPWORDS


class Analyzer:
    """Applies the synonyms map and stems; built once per knowledge load."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        rules: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for canonical, variants in (synonyms or {}).items():
            target = tuple(stem(w) for w in normalize(canonical).split())
            for variant in variants:
                source = tuple(stem(w) for w in normalize(variant).split())
                if source and source != target:
                    rules.setdefault(source[0], []).append((source, target))
        for options in rules.values():
            options.sort(key=lambda rule: -len(rule[0]))
        self._rules = rules
        # single-word sources: the first rule listed wins, as in the general scan
        self._single: dict[str, tuple[str, ...]] = {}
        # multi-word sources, looked up by their first two words
        self._multi: dict[tuple[str, str], list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for first, options in rules.items():
            for source, target in options:
                if len(source) == 1:
                    self._single.setdefault(first, target)
                else:
                    self._multi.setdefault((source[0], source[1]), []).append((source, target))
        self._multi_first = frozenset(pair[0] for pair in self._multi)
        self._one_to_one = {w: t[0] for w, t in self._single.items() if len(t) == 1}
        self._widening = frozenset(w for w, t in self._single.items() if len(t) != 1)

    def stems(self, text: str) -> list[str]:
        """Stemmed words with synonyms applied, stopwords kept (lint uses this too; red flags have their own tokens)."""
        words = [stem(w) for w in text_words(text)]
        return self._apply_synonyms(words)

    def terms(self, text: str) -> list[str]:
        """The content terms of a text, in order, stopwords removed."""
        return [w for w in self.stems(text) if w not in STOP_STEMS]

    def _apply_synonyms(self, words: list[str]) -> list[str]:
        if not self._rules or self._rules.keys().isdisjoint(words):
            return words
        if self._multi_first.isdisjoint(words) and self._widening.isdisjoint(words):
            one = self._one_to_one
            return [one.get(w, w) for w in words]
        single, multi = self._single, self._multi
        out: list[str] = []
        i = 0
        n = len(words)
        while i < n:
            word = words[i]
            if i + 1 < n:
                options = multi.get((word, words[i + 1]))
                if options:
                    for source, target in options:
                        size = len(source)
                        if tuple(words[i : i + size]) == source:
                            out.extend(target)
                            i += size
                            break
                    else:
                        options = None
                    if options:
                        continue
            target = single.get(word)
            if target is None:
                out.append(word)
            else:
                out.extend(target)
            i += 1
        return out


def bigrams(terms: Sequence[str]) -> Iterable[str]:
    """Adjacent pairs of content terms, joined with a space."""
    return (f"{a} {b}" for a, b in itertools.pairwise(terms) if a != b)
