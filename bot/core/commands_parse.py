"""The one command parser: ``/name[@bot] args`` read the same way by every adapter, the engine and the handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: what a platform accepts as a command (Telegram: 1-32 of A-Z a-z 0-9 _, optionally ``@botname``)
_WELL_FORMED = re.compile(r"[a-z0-9_]{1,32}")
_BOT_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
#: command names the bot repeats back ("I don't know the command /x"); anything else is not echoed, so a
#: "/[x](https://evil)" or "/__x__" never turns into a link or formatting in a reply
_ECHOABLE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_HEAD = re.compile(r"(\S*)\s*(.*)", re.DOTALL)
#: longest command name looked at (longer ones are unknown commands)
NAME_LIMIT = 32


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command: ``/name@bot args``. ``name`` is lower-cased; ``bot`` is the addressed username, if any."""

    name: str
    args: str
    bot: str | None = None

    @property
    def well_formed(self) -> bool:
        """A name (and bot name) a platform would accept; anything else a group chat treats as plain text."""
        return _WELL_FORMED.fullmatch(self.name) is not None and (
            self.bot is None or _BOT_NAME.fullmatch(self.bot) is not None
        )

    @property
    def echoable(self) -> bool:
        """Safe to repeat in a reply (plain letters, digits and inner underscores)."""
        return _ECHOABLE.fullmatch(self.name[:NAME_LIMIT]) is not None

    def is_for(self, bot_username: str) -> bool:
        return self.bot is None or self.bot.casefold() == bot_username.casefold()

    @property
    def asks_a_question(self) -> bool:
        """ "/ask <question>" (Discord's and Telegram's /ask) is a question like any other: a possible red flag in
        it gets the safety question; other commands never do."""
        return self.name == "ask" and bool(self.args)

    @property
    def text(self) -> str:
        """The command as the engine reads it, without the bot's name: ``/ask why?``."""
        return f"/{self.name} {self.args}".strip()


def parse_command(text: str) -> Command | None:
    """``'/Ask@runbot why?'`` -> ``Command('ask', 'why?', 'runbot')``; None when ``text`` is not a command."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    match = _HEAD.fullmatch(stripped[1:])
    assert match is not None  # the pattern matches any text
    head, args = match.groups()
    name, at, bot = head.partition("@")
    return Command(name.lower(), args.strip(), bot if at else None)
