"""Before matching: dialect and text-speak variants rewritten to the catalogue's words, and ages read as numbers.

Both are data in ``context.yaml``. ``variants`` maps the catalogue's word to the ways people write it
("cant: [no fit, cnt]", "belly: [belle]"), so every rule of every category understands them without a copy of
each term. ``ages`` names concepts that an age in the message fills ("elderly: 65"): "68F", "Grandad, 79",
"I'm 81", "74 years" count; "74 mins" and "18 kms" don't.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.red_flags.patterns import Hit
from bot.core.red_flags.tokens import Tokens, fold, norm_word

#: Words after a number that make it an age ("68 f", "74 years", "81 yo").
_AGE_AFTER = frozenset("year years yr yrs yo y f m male female yearold".split())
#: Words before a number that make it an age ("im 81", "aged 70", "shes 74", "turning 80").
_AGE_BEFORE = frozenset("im am aged age is hes shes turned turning whos".split())
#: People a bare number may follow ("grandad, 79", "old man for our club, 74").
_PEOPLE = frozenset(
    "grandad granddad grandpa grandma granny gran nan nana grandmother grandfather dad mum mom father mother "
    "husband wife uncle aunt aunty auntie man woman lady gentleman bloke guy member runner neighbour neighbor "
    "patient he she".split()
)
_MIN_AGE, _MAX_AGE = 30, 110


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The variant table (message words -> catalogue words) and the age concepts with their minimum age."""

    variants: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    longest: int = 0
    ages: tuple[tuple[str, int], ...] = ()

    def rewrite(self, toks: Tokens) -> Tokens:
        """The message with every variant replaced (longest first, left to right); sentence and clause kept."""
        if not self.variants:
            return toks
        words, sentence, clause = toks.words, toks.sentence, toks.clause
        out = Tokens([], [], [])
        i, n = 0, len(words)
        changed = False
        while i < n:
            for size in range(min(self.longest, n - i), 0, -1):
                if clause[i + size - 1] != clause[i]:
                    continue
                canonical = self.variants.get(tuple(words[i : i + size]))
                if canonical is not None:
                    out.words.extend(canonical)
                    out.sentence.extend([sentence[i]] * len(canonical))
                    out.clause.extend([clause[i]] * len(canonical))
                    i += size
                    changed = True
                    break
            else:
                out.words.append(words[i])
                out.sentence.append(sentence[i])
                out.clause.append(clause[i])
                i += 1
        return out if changed else toks

    def age_hits(self, toks: Tokens) -> list[Hit]:
        """A hit of each age concept whose minimum the writer's (or their person's) stated age reaches."""
        if not self.ages:
            return []
        words = toks.words
        hits: list[Hit] = []
        for i, w in enumerate(words):
            if not (w.isascii() and w.isdigit()) or not _MIN_AGE <= int(w) <= _MAX_AGE:
                continue
            before = words[i - 1] if i else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            if after in _NOT_AGE_AFTER:
                continue
            if after in _AGE_AFTER or before in _AGE_BEFORE or _PEOPLE.intersection(words[max(0, i - 3) : i]):
                age = int(w)
                hits.extend(Hit(concept, i, i + 1, False) for concept, least in self.ages if age >= least)
        return hits


#: After a bare number next to a person, these make it a measure, not an age ("my husband ran 74 mins").
_NOT_AGE_AFTER = frozenset(
    "min mins minute minutes sec secs second seconds hour hours hr hrs km kms k mile miles mi m metres meters "
    "kg kgs kilos lbs pounds stone st percent bpm steps spm days weeks months times x parkrun parkruns run runs "
    "races marathons halves reps laps pb pr th st nd rd".split()
)


def parse_lexicon(
    data: Mapping[str, Any],
    problem: Callable[[str, int, str], None],
    line_of: Callable[[Any, str, int], int],
    file: str,
) -> tuple[dict[tuple[str, ...], tuple[str, ...]], list[tuple[str, int, int]]]:
    """``variants`` and ``ages`` of one context file: the table, and (concept, minimum age, line) triples."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    ages: list[tuple[str, int, int]] = []
    raw = data.get("variants")
    if raw is not None:
        vline = line_of(data, "variants", 1)
        if not isinstance(raw, dict):
            problem(file, vline, "'variants' must be a mapping of a catalogue word -> the ways people write it")
            raw = {}
        for canonical, spellings in raw.items():
            kline = line_of(raw, canonical, vline)
            target = _words(canonical)
            if not target or not isinstance(spellings, list) or not spellings:
                problem(file, kline, f"variant '{canonical}' needs a word and a non-empty list of spellings")
                continue
            for s in spellings:
                key = _words(s)
                if not key:
                    problem(file, kline, f"variant of '{canonical}': {s!r} is not text")
                elif key in table and table[key] != target:
                    problem(file, kline, f"'{s}' is already a variant of '{' '.join(table[key])}'")
                elif key != target:
                    table[key] = target
    raw = data.get("ages")
    if raw is not None:
        aline = line_of(data, "ages", 1)
        if not isinstance(raw, dict):
            problem(file, aline, "'ages' must be a mapping of concept -> minimum age (like elderly: 65)")
            raw = {}
        for concept, least in raw.items():
            kline = line_of(raw, concept, aline)
            if not isinstance(least, int) or isinstance(least, bool) or not _MIN_AGE <= least <= _MAX_AGE:
                problem(file, kline, f"age for '{concept}' must be a whole number from {_MIN_AGE} to {_MAX_AGE}")
            else:
                ages.append((str(concept), least, kline))
    return table, ages


def _words(text: Any) -> tuple[str, ...]:
    if not isinstance(text, str):
        return ()
    return tuple(w for part in fold(text).split() for w in norm_word(part))
