"""Pure text helpers for the Telegram adapter: message splitting, mentions (commands: ``bot.core.commands_parse``)."""

from __future__ import annotations

import re

#: Telegram's limit for one text message, in UTF-16 code units (what the Bot API counts).
MAX_MESSAGE_LENGTH = 4096

_SEPARATORS = ("\n\n", "\n", " ")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 units.

    Prefers paragraph boundaries, then line breaks, then spaces; a single word longer than the
    limit is cut. Whitespace at the cut points is dropped, nothing else is lost. Text that fits
    comes back unchanged as one chunk; blank text gives no chunks.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 (a surrogate pair)")
    if not text.strip():
        return []
    if utf16_len(text) <= limit:
        return [text]
    chunks = (chunk.strip() for chunk in _split(text, _SEPARATORS, limit))
    return [chunk for chunk in chunks if chunk]


def _split(text: str, separators: tuple[str, ...], limit: int) -> list[str]:
    if utf16_len(text) <= limit:
        return [text]
    if not separators:
        return _hard_cut(text, limit)
    sep, rest = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(sep):
        candidate = f"{current}{sep}{part}" if current else part
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            chunks.append(current)
        pieces = _split(part, rest, limit)
        chunks.extend(pieces[:-1])
        current = pieces[-1] if pieces else ""
    if current.strip():
        chunks.append(current)
    return chunks


def _hard_cut(text: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    units = 0
    for char in text:
        width = utf16_len(char)
        if units + width > limit:
            chunks.append("".join(current))
            current, units = [], 0
        current.append(char)
        units += width
    if current:
        chunks.append("".join(current))
    return chunks


def strip_mention(text: str, bot_username: str) -> tuple[bool, str]:
    """Whether ``text`` mentions ``@bot_username``, and the text without the mention(s)."""
    pattern = re.compile(rf"(?<![\w@])@{re.escape(bot_username)}\b[,:]?", re.IGNORECASE)
    stripped, count = pattern.subn(" ", text)
    return count > 0, " ".join(stripped.split())


def deep_link(bot_username: str, payload: str) -> str:
    """A t.me link that opens the private chat and sends ``/start payload`` when Start is pressed."""
    return f"https://t.me/{bot_username}?start={payload}"


_LINKY = str.maketrans({"@": "＠", "/": "∕", "#": "＃", "$": "＄", ":": "∶"})
_DOTTED = re.compile(r"(?<=\w)\.(?=\w)")


def safe_name(name: str) -> str:
    """A display name that Telegram cannot turn into a mention, link, command or hashtag in a plain-text reply:
    ``@victim``, ``evil.example/x`` and ``/start`` keep their look with look-alike characters (＠ ∕ ․), which the
    Bot API does not detect as entities (the Discord adapter gets the same from allowed_mentions + escaping)."""
    from bot.core.replies import clean_name

    return _DOTTED.sub("․", clean_name(name, 32).translate(_LINKY))
