"""Typed answers to a triage step: "2", "yes", "nope", "one leg", "less than 6 wks" -> the index of a choice.

Buttons are exact; typing is not, so this never guesses: text that fits several choices (a bare "yes" when two
choices start with "Yes") maps to nothing and the step is asked again.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz

from bot.core.text import normalize

REASK = "Please pick one of the options (or type its number). Send /cancel to leave the check.\n\n"
WHICH_ONE = "Which one? Please pick the option that fits best (or type its number).\n\n"

_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "ya", "yea", "sure", "correct", "true", "definitely"})
_NO = frozenset({"no", "n", "nope", "nah", "none", "never", "neither", "nothing"})
#: several-word answers, matched at the start of the text (normalized: no apostrophes)
_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("no", ("none of these", "none of them", "neither of them", "not really", "no way", "i dont", "it doesnt",
            "i havent", "i do not", "it does not")),
    ("yes", ("i do", "it does", "i have", "they do")),
)
#: words that add nothing to a yes or no ("yes i think so", "no thanks")
_FILLER = frozenset({"i", "do", "it", "does", "thanks", "thank", "you", "please", "sure", "really", "have", "am", "im",
                     "think", "so", "just", "ok", "okay", "definitely", "mate", "that", "is", "its"})
#: words too common to tell choices apart
_STOP = frozenset({"a", "an", "the", "of", "in", "to", "and", "or", "my", "it", "its", "i", "im", "ive", "is", "just",
                   "only", "that", "this", "me", "mine", "on"})
FUZZY_CUTOFF = 80.0
FUZZY_MARGIN = 3.0


def _polarity(words: list[str]) -> tuple[str | None, list[str]]:
    """("yes" | "no" | None, the words after the yes or no)."""
    text = " ".join(words)
    for key, phrases in _PHRASES:
        for phrase in phrases:
            if text == phrase or text.startswith(phrase + " "):
                return key, words[len(phrase.split()):]
    if words and words[0] in _YES:
        return "yes", words[1:]
    if words and words[0] in _NO:
        return "no", words[1:]
    return None, words


def _content(words: list[str]) -> str:
    return " ".join(w for w in words if w not in _STOP)


def _fuzzy(query: str, options: list[str]) -> int | None:
    """The one option ``query`` fits clearly best (word-set similarity, typos forgiven), else None."""
    scored = sorted(((fuzz.token_set_ratio(query, o), i) for i, o in enumerate(options) if o), reverse=True)
    if not query or not scored or scored[0][0] < FUZZY_CUTOFF:
        return None
    if len(scored) > 1 and scored[1][0] >= scored[0][0] - FUZZY_MARGIN:
        return None  # ambiguous: ask again rather than guess
    return scored[0][1]


def match_answer(choice_labels: Sequence[str], text: str) -> int | None:
    """Map typed text to a choice: its number, its label, a yes or no that fits exactly one choice, or the words
    that tell one choice from the others. Anything that fits several choices (a bare "yes" when two choices start
    with "Yes") is None, so the step is asked again: never a guess, and never the first or most severe option."""
    norm = normalize(text)
    if not norm:
        return None
    if norm.isdigit():
        number = int(norm)
        return number - 1 if 1 <= number <= len(choice_labels) else None
    labels = [normalize(label) for label in choice_labels]
    if norm in labels:
        return labels.index(norm)
    parsed = [_polarity(label.split()) for label in labels]
    rests = [_content(rest) for _, rest in parsed]
    polarity, rest = _polarity(norm.split())
    if polarity is None:
        return _fuzzy(_content(norm.split()), [_content(label.split()) for label in labels])
    group = [i for i, (p, _) in enumerate(parsed) if p == polarity]
    said = [w for w in rest if w not in _FILLER]
    if not said:
        return group[0] if len(group) == 1 else None
    best = _fuzzy(_content(said), rests)
    if best is not None:
        return best if best in group else None  # "no, both legs" contradicts itself: ask again
    if len(group) == 1 and not rests[group[0]] and len(said) <= 2:
        return group[0]  # "nope, nothing like that"
    return None


def reask_hint(choice_labels: Sequence[str], text: str) -> str:
    """The line before a step asked again: "which one?" for a yes or no that fits several choices."""
    polarity, rest = _polarity(normalize(text).split())
    if polarity is not None and not [w for w in rest if w not in _FILLER]:
        fitting = [c for c in choice_labels if _polarity(normalize(c).split())[0] in (polarity, None)]
        if len(fitting) > 1:
            return WHICH_ONE
    return REASK


