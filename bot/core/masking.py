"""Masking personal details in questions kept for moderators: names, @handles, emails, links and numbers."""

from __future__ import annotations

import re

from bot.core.text import normalize

#: what a masked span becomes in the stored (normalized) text
MARKS = {"name": "<name>", "handle": "<handle>", "email": "<email>", "link": "<link>", "number": "<number>"}
#: sentinel words that survive normalization unchanged (lowercase letters, no repeats), swapped for MARKS after it
_SENTINEL = {kind: f"xq{kind}x" for kind in MARKS}
_SENTINEL_WORD = re.compile(r"\bxq(name|handle|email|link|number)x\b")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_LINK = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|co|uk|me|ly|gg|app|dev)(?:/\S*)?\b",
                   re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w{2,}")
#: phone numbers and ids: 5+ digits, possibly split by spaces, dots, dashes or brackets, with an optional +
_NUMBER = re.compile(r"\+?\(?\d(?:[\d\s().-]{3,}\d)(?!\w)")
#: a name the writer introduces: "my name is sam", "i'm called jo", "call me al", "this is dr smith"
_INTRO = re.compile(r"\b(my name is|my name's|i am called|i'm called|call me|this is dr\.?|ask dr\.?)\s+([^\W\d_]+)",
                    re.IGNORECASE | re.UNICODE)
_REPORTING = re.compile(r"\s+(said|says|told|tells|thinks|reckons|asked|suggested|recommended)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
#: capitalised words that are not names (besides the first word of a sentence)
_NOT_NAMES = frozenset(
    "i i'm i've i'd i'll monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december christmas easter parkrun".split()
)


def _is_digits(span: str) -> bool:
    return sum(c.isdigit() for c in span) >= 5


def mask_text(text: str, display_name: str = "") -> str:
    """``text`` with personal details replaced by sentinel words (see ``mask``)."""
    out = _EMAIL.sub(f" {_SENTINEL['email']} ", text)
    out = _LINK.sub(f" {_SENTINEL['link']} ", out)
    out = _HANDLE.sub(f" {_SENTINEL['handle']} ", out)
    out = _NUMBER.sub(lambda m: f" {_SENTINEL['number']} " if _is_digits(m.group()) else m.group(), out)
    out = _INTRO.sub(lambda m: f"{m.group(1)} {_SENTINEL['name']}", out)
    names = {w.casefold() for w in _WORD.findall(display_name or "") if len(w) > 1}
    return _mask_names(out, names)


def _mask_names(text: str, names: set[str]) -> str:
    """The sender's own name anywhere, and capitalised words in mid-sentence (Sam, O'Brien; not NHS, not I)."""
    pieces: list[str] = []
    last = 0
    sentence_start = True
    for m in _WORD.finditer(text):
        word = m.group()
        between = text[last:m.start()]
        if re.search(r"[.!?\n]", between):
            sentence_start = True
        folded = word.casefold()
        capitalised = word[0].isupper() and not word.isupper() and len(word) > 1
        reported = _REPORTING.match(text, m.end()) is not None  # "Sam said", "Jo told me"
        is_name = folded in names or (
            capitalised
            and (not sentence_start or reported)
            and folded not in _NOT_NAMES
            and not word.startswith("xq")
        )
        pieces.append(between)
        pieces.append(_SENTINEL["name"] if is_name else word)
        last = m.end()
        sentence_start = False
    pieces.append(text[last:])
    return "".join(pieces)


def mask(text: str, display_name: str = "") -> str:
    """The normalized text with names, @handles, emails, links and long numbers replaced by ``<name>`` etc."""
    return _SENTINEL_WORD.sub(lambda m: MARKS[m.group(1)], normalize(mask_text(text, display_name)))


def redact(text: str) -> str:
    """Mask what can still be recognised in already-stored text (rows from before masking, or a missed detail)."""
    out = _EMAIL.sub(MARKS["email"], text)
    out = _LINK.sub(MARKS["link"], out)
    out = _HANDLE.sub(MARKS["handle"], out)
    return _NUMBER.sub(lambda m: MARKS["number"] if _is_digits(m.group()) else m.group(), out)
