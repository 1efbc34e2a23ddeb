"""Text normalization shared by FAQ matching, triage answers and red-flag detection."""

from __future__ import annotations

import re
import unicodedata

#: Messages longer than this are cut before matching (hostile or pasted walls of text).
MAX_MATCH_CHARS = 2000

_APOSTROPHES = "'\u2019\u2018\u02bc`\u00b4"
_REPEATS = re.compile(r"([a-z])\1{2,}")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGITS = frozenset("0123456789")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[a-z]{2,})|(?<=[a-z]{2})(?=\d)")


def _keep_char(ch: str) -> str:
    cat = unicodedata.category(ch)
    if cat.startswith("L") or cat.startswith("N"):
        return ch
    if cat in ("Mn", "Me", "Cf"):  # combining marks, zero-width and direction controls: dropped
        return ""
    if ch in _APOSTROPHES:
        return ""
    return " "


#: for plain ASCII text the Unicode steps are the identity: one translate does the same work much faster
_ASCII_FOLD = {c: (None if chr(c) in _APOSTROPHES else " ") for c in range(128) if not chr(c).isalnum()}


def fold(text: str) -> str:
    """NFKC, case-folded, accents stripped, apostrophes removed, everything else but letters and digits a space."""
    text = text[:MAX_MATCH_CHARS]
    if text.isascii():
        return text.lower().translate(_ASCII_FOLD)
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    return "".join(_keep_char(ch) for ch in text)


def normalize(text: str) -> str:
    """The canonical form of a message: folded, repeated letters squeezed, single spaces, ASCII words."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The words of the canonical form (see normalize)."""
    folded = fold(text)
    if not folded.isascii():
        folded = _NON_WORD.sub(" ", folded)
    folded = _REPEATS.sub(r"\1\1", folded)
    if not _DIGITS.isdisjoint(folded):
        folded = _DIGIT_LETTER.sub(" ", folded)
    return folded.split()


def tokens(text: str) -> list[str]:
    """Words of the normalized text."""
    return normalize(text).split()
