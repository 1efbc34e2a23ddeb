"""A message as the red-flag detector sees it: unified text split into words, sentences and clauses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.text import squeeze_repeats, unify

#: Messages are scanned up to this many characters (Discord and Telegram messages are shorter).
MAX_SCAN_CHARS = 6000

_DECIMAL_RE = re.compile(r"(?<=\d)[.,](?=\d)")
#: Sentence ends and clause breaks (comma-like punctuation; a dash between spaces is one too).
_SENTENCE_CHARS = ".!?;\n\r\u2026\u3002"
_CLAUSE_CHARS = ",:()[]\u2013\u2014"
_SPACE_CHARS = '-/+&"*#~=%<>|\\\t'
_NON_WORD_RE = re.compile(r"[^\w\x01\x02]+|_+")
#: Anything but plain words: other symbols, non-ASCII letters, digits glued to letters.
_MESSY_RE = re.compile(r"[^\sa-z0-9\x01\x02]|\d[a-z]|[a-z]{2}\d")
#: A number glued to a unit is two words ("5m" -> "5 m", "10ft" -> "10 ft"), so "#" patterns see the number.
DIGIT_LETTER_RE = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z]{2})(?=\d)")

#: Words that stand for a number in "#" patterns ("fell a good few metres", "10 foot").
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty "
    "hundred few couple several dozen half".split()
)


#: Laughing emoji are words to the detector ("haha"), so the `jocular` guard sees them: "I want to die 😂".
_LAUGHS = {ord(e): " haha " for e in "\U0001F602\U0001F923\U0001F606\U0001F639\U0001F480\U0001F61C\U0001F61D"}


def fold(text: str) -> str:
    """The shared normaliser's text, with decimal points turned into word breaks ("38.9" -> "38 9")."""
    return _DECIMAL_RE.sub(" ", unify(text[:MAX_SCAN_CHARS].translate(_LAUGHS)))


def norm_word(word: str) -> list[str]:
    """One pattern word as message words: repeats squeezed, numbers split from units."""
    return DIGIT_LETTER_RE.sub(" ", squeeze_repeats(word)).split()


def is_number(word: str) -> bool:
    return word.isdigit() or word in NUMBER_WORDS


@dataclass(slots=True)
class Tokens:
    """The words of a message with the sentence and clause number of each."""

    words: list[str]
    sentence: list[int]
    clause: list[int]


def tokenize(text: str) -> Tokens:
    folded = fold(text)
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
        folded = DIGIT_LETTER_RE.sub(" ", _NON_WORD_RE.sub(" ", folded))
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
    return Tokens(words, sentence, clause)
