"""Discord messages: direct messages, and server messages that address the bot or are overheard in a listen channel
(a mixin of ``DiscordAdapter``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import discord

from bot.adapters.discord_support import DMS_CLOSED_NOTE, PLATFORM, DiscordBase, shown_name
from bot.core.messages import IncomingMessage, Reply
from bot.core.replies import SORRY


class DiscordMessages(DiscordBase):
    """Gateway messages -> the engine -> replies in the channel, by DM, or nothing."""

    messages_handled: int

    # ------------------------------------------------------------------ messages
    async def _on_message(self, message: discord.Message) -> None:
        try:
            if message.author.bot:
                return
            if message.guild is None:
                await self._on_direct_message(message)
            else:
                await self._on_server_message(message)
        except Exception as exc:
            self._report("message", exc)
        finally:
            self.messages_handled += 1

    def _incoming(
        self, message: discord.Message, text: str, *, private: bool, listen_only: bool = False
    ) -> IncomingMessage:
        return IncomingMessage(
            platform=PLATFORM, user_id=str(message.author.id), chat_id=str(message.channel.id), text=text,
            is_private=private, display_name=shown_name(message.author),
            is_moderator=not private and self._is_moderator(message.author), listen_only=listen_only,
        )

    async def _on_direct_message(self, message: discord.Message) -> None:
        text = message.content.strip()
        outcome = await self._handle(self._incoming(message, text, private=True))
        if outcome is None:
            await self._send(message.channel, Reply(SORRY))
            return
        for reply in outcome.replies:
            await self._send(message.channel, reply)

    def _addressed(self, message: discord.Message) -> bool:
        me = self.client.user
        if me is None:
            return False
        if any(user.id == me.id for user in message.mentions):
            return True
        # Discord's autocomplete often inserts the bot's managed role instead of the bot user
        role = message.guild.self_role if message.guild is not None else None
        if role is not None and any(r.id == role.id for r in message.role_mentions):
            return True
        ref = message.reference
        resolved = ref.resolved if ref is not None else None
        return isinstance(resolved, discord.Message) and resolved.author.id == me.id

    def _strip_mention(self, message: discord.Message) -> str:
        me = self.client.user
        content = message.content
        if me is not None:
            content = re.sub(rf"<@!?{me.id}>", " ", content)
        role = message.guild.self_role if message.guild is not None else None
        if role is not None:
            content = content.replace(role.mention, " ")
        return " ".join(content.split(" ")).strip()

    async def _on_server_message(self, message: discord.Message) -> None:
        addressed = self._addressed(message)
        channel = message.channel
        listen = self.settings.listen_channel_ids
        in_listen = channel.id in listen or getattr(channel, "parent_id", None) in listen
        if not addressed and not in_listen:
            return
        text = self._strip_mention(message)
        outcome = await self._handle(self._incoming(message, text, private=False, listen_only=not addressed))
        if outcome is None:
            if addressed:
                await self._send(channel, Reply(SORRY), reference=message)
            return
        await self._deliver_in_server(message, outcome.replies)

    async def _deliver_in_server(self, message: discord.Message, replies: Sequence[Reply]) -> None:
        """Public replies answer in the channel; private ones go by DM, with a note in the channel if DMs are closed."""
        dms_closed = False
        for reply in replies:
            if not reply.private:
                await self._send(message.channel, reply, reference=message)
                continue
            if dms_closed:
                continue
            try:
                await self._send(message.author, reply)
            except discord.Forbidden:
                dms_closed = True
                await self._send(message.channel, Reply(DMS_CLOSED_NOTE), reference=message)
