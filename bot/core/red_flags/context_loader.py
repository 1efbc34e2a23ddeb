"""Loading the catalogue's context (``context.yaml``): settings, real words, the NegEx/ConText lists and the
word-sense guards, and the lexicon (variants, ages)."""

from __future__ import annotations

from typing import Any

from bot.core.red_flags.builder import CONCEPT_RE, Builder, item_line, key_line, type_name
from bot.core.red_flags.lexicon import Lexicon, parse_lexicon
from bot.core.red_flags.patterns import Settings
from bot.core.red_flags.tokens import fold, norm_word
from bot.core.red_flags.vocabulary import SPECIAL_KEYS, ConceptInfo, Window
from bot.core.yamlio import Problem

SETTING_KEYS = frozenset({"negation_window", "post_window", "fuzzy_min_length", "fuzzy_two_edits_length"})


def read_lexicon(b: Builder, mappings: list[tuple[str, Any]]) -> Lexicon:
    """The variant table and the age concepts (each age concept becomes a concept rules can name)."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    ages: list[tuple[str, int]] = []
    for file, data in mappings:
        part, found = parse_lexicon(data, lambda f, n, msg: b.problems.append(Problem(f, n, msg)), key_line, file)
        table.update(part)
        for concept, least, line in found:
            if not CONCEPT_RE.match(concept):
                b.problems.append(Problem(file, line, f"age concept '{concept}' must be lowercase letters, digits, _"))
                continue
            ages.append((concept, least))
            b.concepts.setdefault(concept, ConceptInfo(concept))
    return Lexicon(table, max((len(k) for k in table), default=0), tuple(ages))


def read_settings(b: Builder, data: Any) -> tuple[Settings, Window]:
    settings = Settings()
    raw = data["settings"]
    sline = key_line(data, "settings", 1)
    if not isinstance(raw, dict):
        b.problem(sline, f"'settings' must be a mapping, not {type_name(raw)}")
        return settings, Window()
    for key, value in raw.items():
        kline = key_line(raw, key, sline)
        if key not in SETTING_KEYS:
            b.problem(kline, f"unknown setting '{key}' (expected one of: {', '.join(sorted(SETTING_KEYS))})")
        elif not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 30:
            b.problem(kline, f"setting '{key}' must be a whole number from 1 to 30")
        else:
            setattr(settings, key, value)
    return settings, Window(settings.negation_window, settings.post_window)


def read_real_words(b: Builder, data: Any) -> list[str]:
    rline = key_line(data, "real_words", 1)
    raw = data["real_words"]
    if not isinstance(raw, list):
        b.problem(rline, f"'real_words' must be a list of words, not {type_name(raw)}")
        return []
    out: list[str] = []
    for i, w in enumerate(raw):
        if not isinstance(w, str) or len(w.split()) != 1:
            b.problem(item_line(raw, i, rline), "each entry of 'real_words' must be one word")
        else:
            out.extend(norm_word(fold(w).strip()))
    return out


def read_specials(b: Builder, mappings: list[tuple[str, Any]]) -> None:
    """The context lists; negators first, so a term that starts with one carries its own polarity."""
    where: dict[str, str] = {}
    for key, special in SPECIAL_KEYS.items():
        for file, data in mappings:
            if key not in data:
                continue
            b.file = file
            if key in where:
                b.problem(key_line(data, key, 1), f"'{key}' is already defined in {where[key]}")
                continue
            where[key] = file
            b.add_terms(data[key], key_line(data, key, 1), special, f"'{key}'")
            b.concepts[special] = ConceptInfo(special)
            if key == "negators":
                b.polarity_words.update(t.words[0].text for t in b.terms if t.concept == special and len(t.words) == 1)
    if "negators" not in where:
        b.file = mappings[0][0] if mappings else b.file
        b.problem(1, "missing 'negators' (the words that cancel a symptom after them, like 'no', 'not')")
