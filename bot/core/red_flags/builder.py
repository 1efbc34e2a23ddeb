"""Building the red-flag catalogue: terms parsed from patterns, and every problem with its file and line."""

from __future__ import annotations

import re
from itertools import product
from typing import Any

from bot.core.red_flags.patterns import ANY, GAP, MAX_EXPANSION, NUM, Term, Word, part_words
from bot.core.red_flags.vocabulary import POLARITY_FIRST, ConceptInfo
from bot.core.yamlio import LDict, LList, Problem

CONCEPT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.terms: list[Term] = []
        self.concepts: dict[str, ConceptInfo] = {}
        self.anon = 0
        self.polarity_words: set[str] = set(POLARITY_FIRST)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def expand_term(self, raw: Any, line: int) -> list[str] | None:
        """``pee|wee .. cloudy|smell*`` -> every combination of the alternatives, as plain terms."""
        if not isinstance(raw, str):
            self.problem(line, f"a term must be text, not {type_name(raw)}")
            return None
        if "|" not in raw:
            return [raw]
        choices: list[list[str]] = []
        for part in raw.split():
            alts = part.split("|")
            if any(not a for a in alts):
                self.problem(line, f"bad pattern {raw!r}: empty alternative in {part!r} (write a|b|c)")
                return None
            if len(alts) > 1 and any(a in (ANY, GAP, NUM) for a in alts):
                self.problem(line, f"bad pattern {raw!r}: '_', '..' and '#' cannot be alternatives")
                return None
            choices.append(alts)
        count = 1
        for alts in choices:
            count *= len(alts)
        if count > MAX_EXPANSION:
            self.problem(line, f"bad pattern {raw!r}: {count} combinations (at most {MAX_EXPANSION})")
            return None
        return [" ".join(combo) for combo in product(*choices)]

    def parse_term(self, raw: Any, line: int, concept: str) -> Term | None:
        if not isinstance(raw, str):
            self.problem(line, f"a term must be text, not {type_name(raw)}")
            return None
        words: list[Word] = []
        for part in raw.split():
            parsed = part_words(part)
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
        return Term(tuple(words), concept, polarity)

    def add_terms(self, items: Any, line: int, concept: str, where: str) -> int:
        if not isinstance(items, list):
            self.problem(line, f"{where} must be a list of terms, not {type_name(items)}")
            return 0
        if not items:
            self.problem(line, f"{where} is empty")
            return 0
        count = 0
        for i, raw in enumerate(items):
            iline = item_line(items, i, line)
            for text in self.expand_term(raw, iline) or ():
                term = self.parse_term(text, iline, concept)
                if term is not None:
                    self.terms.append(term)
                    count += 1
        return count


def type_name(value: Any) -> str:
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


def key_line(d: Any, key: str, default: int) -> int:
    if isinstance(d, LDict):
        return d.line_of(key) or default
    return default


def item_line(seq: Any, i: int, default: int) -> int:
    if isinstance(seq, LList):
        return seq.line_of(i) or default
    return default
