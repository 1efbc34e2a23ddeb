"""Rendering helpers for Discord: message splitting and the choice buttons that survive restarts."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.core.messages import Choice

log = logging.getLogger(__name__)

#: Discord's limit on a message's content, in characters.
MESSAGE_LIMIT = 2000
#: At most 5 rows of 5 buttons fit under one message.
MAX_BUTTONS = 25
#: Discord's limit on a button label.
LABEL_LIMIT = 80

#: Called with the click interaction and the pressed button's payload.
ClickHandler = Callable[[discord.Interaction[Any], str], Awaitable[None]]


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, preferring paragraph, then line, then word ends.

    Joining the chunks with the separators that were cut at gives back the text, minus whitespace at the cuts.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit  # one unbroken run longer than the limit: cut it hard
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


class ChoiceButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?P<payload>.{1,100})"):
    """A button whose ``custom_id`` is the core's payload; rebuilt from any clicked message, so it works after restarts.

    The callback finds the adapter through the client (``client.on_choice``), since discord.py creates these items
    itself when a click arrives.
    """

    def __init__(
        self,
        payload: str,
        label: str = "…",
        *,
        disabled: bool = False,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        label = label.strip() or "…"
        if len(label) > LABEL_LIMIT:
            label = label[: LABEL_LIMIT - 1] + "…"
        super().__init__(discord.ui.Button(label=label, custom_id=payload, style=style, disabled=disabled))
        self.payload = payload

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ChoiceButton:
        label = getattr(item, "label", None) or "…"
        return cls(match["payload"], label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler: ClickHandler | None = getattr(interaction.client, "on_choice", None)
        if handler is None:
            log.warning("a choice button was clicked but the client has no on_choice handler")
            return
        await handler(interaction, self.payload)


def choices_view(choices: Sequence[Choice]) -> discord.ui.View:
    """A view with one button per choice (at most 25; the rest are dropped with a warning)."""
    if len(choices) > MAX_BUTTONS:
        log.warning("reply offers %d choices; Discord shows at most %d buttons", len(choices), MAX_BUTTONS)
    view = discord.ui.View(timeout=None)
    for choice in choices[:MAX_BUTTONS]:
        view.add_item(ChoiceButton(choice.payload, choice.label))
    return view


def disabled_view(message: discord.Message, pressed: str) -> discord.ui.View | None:
    """The message's buttons again, all disabled, the pressed one highlighted; None if it had no buttons."""
    view = discord.ui.View(timeout=None)
    for row in message.components:
        for component in getattr(row, "children", ()):
            custom_id = getattr(component, "custom_id", None)
            if not isinstance(component, discord.Button) or custom_id is None or len(view.children) >= MAX_BUTTONS:
                continue
            style = discord.ButtonStyle.success if custom_id == pressed else discord.ButtonStyle.secondary
            view.add_item(ChoiceButton(custom_id, component.label or "…", disabled=True, style=style))
    return view if view.children else None


NOT_YOURS = "These buttons belong to someone else's question. Ask me yourself and I'll answer you."


def button_owner(message: discord.Message | None, *, in_server: bool) -> int | None:
    """Whose question a public bot message answers: the member it replies to (or who ran the command); None when
    anyone may press (a DM or an ephemeral message is only seen by its user, or the owner is unknown)."""
    if message is None or not in_server or message.flags.ephemeral:
        return None
    meta = message.interaction_metadata
    if meta is not None:
        return meta.user.id
    resolved = message.reference.resolved if message.reference is not None else None
    if isinstance(resolved, discord.Message) and not resolved.author.bot:
        return resolved.author.id
    return None
