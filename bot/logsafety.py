"""Minimisation in logs (issue 16): message texts are health data, so no log line carries one unless the operator
sets ``logging.include_text: true`` explicitly.

runbot's own log lines never include message text at any level. The libraries underneath do at DEBUG:
python-telegram-bot logs every Bot API call with its parameters (the reply text) and the updates it receives,
discord.py logs HTTP bodies and gateway events, httpx/aiohttp log requests, aiosqlite logs each statement with its
parameters (inbox payloads, unanswered questions). Without ``include_text`` those loggers stay at INFO or above
whatever ``logging.level`` says.
"""

from __future__ import annotations

import logging

#: libraries whose DEBUG output includes message texts (request bodies, updates, SQL parameters)
TEXT_AT_DEBUG = ("aiosqlite", "telegram", "httpx", "httpcore", "discord", "aiohttp", "websockets")


def apply(include_text: bool) -> None:
    """Keep the libraries in ``TEXT_AT_DEBUG`` at INFO or above unless ``include_text`` (call after the root level
    is set)."""
    # INFO only where the root would let DEBUG through; otherwise the library follows the root's level (so calling
    # this again, e.g. for another command in the same process, never leaves a library stuck at a stricter level)
    root = logging.getLogger().getEffectiveLevel()
    level = logging.INFO if not include_text and root < logging.INFO else logging.NOTSET
    for name in TEXT_AT_DEBUG:
        logging.getLogger(name).setLevel(level)
