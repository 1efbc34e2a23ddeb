"""The one text normaliser: FAQ matching, triage answers and red-flag detection all read text through ``unify``."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from functools import lru_cache
from importlib import resources

log = logging.getLogger(__name__)

#: Messages longer than this are cut before matching (hostile or pasted walls of text).
MAX_MATCH_CHARS = 2000

_APOSTROPHES = "'\u2019\u2018\u02bc`\u00b4"
_APOSTROPHES_RE = re.compile(f"[{_APOSTROPHES}]")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGITS = frozenset("0123456789")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[a-z]{2,})|(?<=[a-z]{2})(?=\d)")
#: Line breaks and tabs are kept (a line break ends a sentence for the red flags); other controls are dropped.
_KEPT_CONTROLS = frozenset("\n\r\t")
#: for plain ASCII text the Unicode steps are the identity: one translate does the rest
_ASCII_FOLD = {c: " " for c in range(128) if not chr(c).isalnum()}


@lru_cache(maxsize=1)
def _confusables() -> dict[int, str]:
    """Look-alike characters -> the ASCII letter or digit they imitate ("о" Cyrillic -> "o").

    From Unicode's confusables table as shipped by the ``confusable_homoglyphs`` package; loaded on the first
    non-ASCII message only (about 15 ms), so plain ASCII text never pays for it.
    """
    try:
        raw = (resources.files("confusable_homoglyphs") / "confusables.json").read_text(encoding="utf-8")
        table = json.loads(raw)
    except (OSError, ValueError, ModuleNotFoundError):  # pragma: no cover - a broken install
        log.warning("confusable_homoglyphs is not installed: look-alike letters are not folded")
        return {}
    out: dict[int, str] = {}
    for ch, glyphs in table.items():
        if len(ch) != 1 or ch.isascii():
            continue
        for glyph in glyphs:
            c = glyph.get("c", "")
            if len(c) == 1 and c.isascii() and c.isalnum():
                out[ord(ch)] = c.lower()
                break
    return out


def warm_up() -> None:
    """Load the look-alike table now (call it in a thread at start): the first non-ASCII message of a running bot
    then does not read and parse it inside the event loop."""
    _confusables()


def _keep(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me", "Cf"):  # combining accents, zero-width and direction marks
        return False
    return not (cat == "Cc" and ch not in _KEPT_CONTROLS)  # NUL and other control characters


def unify(text: str) -> str:
    """Case-folded text with look-alike letters, accents, full-width forms, zero-width and control characters
    folded away and apostrophes removed ("Сan\u2019t fееl my grоin" -> "cant feel my groin"); punctuation stays."""
    if text.isascii():
        if not text.isprintable() and any(c < " " and c not in _KEPT_CONTROLS for c in text):
            text = "".join(c for c in text if c >= " " or c in _KEPT_CONTROLS)
        return _APOSTROPHES_RE.sub("", text.lower())
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if _keep(c)).translate(_confusables())
    return _APOSTROPHES_RE.sub("", unicodedata.normalize("NFKC", text))


def squeeze_repeats(text: str) -> str:
    """Letters repeated three or more times become two ("soooo" -> "soo")."""
    return _REPEATS.sub(r"\1\1", text)


def fold(text: str) -> str:
    """``unify`` with everything but letters and digits turned into spaces (the FAQ matcher's view)."""
    folded = unify(text[:MAX_MATCH_CHARS])
    return _NON_WORD.sub(" ", folded) if not folded.isascii() else folded.translate(_ASCII_FOLD)


def normalize(text: str) -> str:
    """The canonical form of a message: folded, repeated letters squeezed, single spaces, ASCII words."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The words of the canonical form (see normalize)."""
    folded = fold(text)
    if not folded.isascii():
        folded = _NON_WORD.sub(" ", folded)
    folded = squeeze_repeats(folded)
    if not _DIGITS.isdisjoint(folded):
        folded = _DIGIT_LETTER.sub(" ", folded)
    return folded.split()
