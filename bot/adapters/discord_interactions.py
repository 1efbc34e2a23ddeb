"""Discord interactions: slash commands (deferred, answered through follow-ups) and pressed buttons (a mixin of
``DiscordAdapter``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.adapters.discord_support import NOT_A_MODERATOR, PLATFORM, DiscordBase, shown_name
from bot.adapters.discord_ui import NOT_YOURS, button_owner, disabled_view
from bot.core.messages import IncomingMessage, Reply
from bot.core.replies import SORRY

log = logging.getLogger("bot.adapters.discord_adapter")


class DiscordInteractions(DiscordBase):
    """Slash commands and button clicks -> the engine -> follow-ups (ephemeral where personal)."""

    # ------------------------------------------------------------------ interactions
    async def _run_command(
        self, interaction: discord.Interaction[Any], text: str, *, personal: bool, moderator: bool = False
    ) -> None:
        """A slash command: defer, check permission, ask the engine, answer through follow-ups."""
        in_server = interaction.guild_id is not None
        ephemeral = in_server and personal
        try:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except discord.HTTPException as exc:
            self._report("defer", exc)
            return
        try:
            if moderator and not self._is_moderator(interaction.user, interaction.permissions):
                await self._followups(interaction, [Reply(NOT_A_MODERATOR, private=True)], in_server, ephemeral)
                return
            msg = IncomingMessage(
                platform=PLATFORM, user_id=str(interaction.user.id), chat_id=str(interaction.channel_id),
                text=text, is_private=not in_server, display_name=shown_name(interaction.user),
                is_moderator=in_server and self._is_moderator(interaction.user, interaction.permissions),
            )
            outcome = await self._handle(msg)
            replies = outcome.replies if outcome is not None else (Reply(SORRY, private=True),)
            await self._followups(interaction, replies, in_server, ephemeral)
        except Exception as exc:
            self._report(f"command {text.split()[0]}", exc)

    async def _followups(
        self, interaction: discord.Interaction[Any], replies: Sequence[Reply], in_server: bool, deferred_private: bool
    ) -> None:
        """Answer a deferred command. The first follow-up replaces the "thinking" message and keeps its visibility,
        so in a server public replies go first and, when there is none, the public placeholder is deleted."""
        if not in_server or deferred_private:
            ordered = [(reply, in_server) for reply in replies]
        else:
            public = [(r, False) for r in replies if not r.private]
            private = [(r, True) for r in replies if r.private]
            ordered = public + private
        if not ordered or (in_server and ordered[0][1] != deferred_private):
            # nothing to say, or only private replies after a public "thinking" message: remove the placeholder
            await interaction.delete_original_response()
        for reply, ephemeral in ordered:
            await self._send_followup(interaction, reply, ephemeral)

    async def _on_choice(self, interaction: discord.Interaction[Any], payload: str) -> None:
        """A pressed button: acknowledge, ask the engine, disable the old buttons, send the replies. Someone else's
        buttons (a public answer to another member) get a note only the clicker sees; the owner's stay as they are."""
        if self.faq_forms is not None and await self.faq_forms.intercept(interaction, payload):
            return  # a moderator's button that opens a form (a modal must be the first answer)
        owner = button_owner(interaction.message, in_server=interaction.guild_id is not None)
        if owner is not None and owner != interaction.user.id:
            try:
                await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            except discord.HTTPException as exc:
                self._report("not yours", exc)
            return
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            self._report("defer", exc)
            return
        try:
            in_server = interaction.guild_id is not None
            message = interaction.message
            was_private = bool(message is not None and message.flags.ephemeral)
            msg = IncomingMessage(
                platform=PLATFORM, user_id=str(interaction.user.id), chat_id=str(interaction.channel_id),
                choice=payload, is_private=not in_server, display_name=shown_name(interaction.user),
                is_moderator=in_server and self._is_moderator(interaction.user, interaction.permissions),
            )
            outcome = await self._handle(msg)
            if message is not None:
                view = disabled_view(message, payload)
                if view is not None:
                    try:
                        await interaction.edit_original_response(view=view)
                    except discord.HTTPException as exc:
                        log.warning("discord: could not disable old buttons: %s", exc)
            replies = outcome.replies if outcome is not None else (Reply(SORRY, private=True),)
            for reply in replies:
                await self._send_followup(interaction, reply, in_server and (reply.private or was_private))
        except Exception as exc:
            self._report("button", exc)
