"""What the Discord adapter's parts share: settings, names, the engine's port, and the base class with reporting,
the moderator check and sending (the adapter is ``DiscordAdapter``; messages and interactions are its mixins)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import discord
from discord.utils import MISSING

from bot.adapters.discord_ops import DiscordOps
from bot.adapters.discord_ui import choices_view, split_message
from bot.core.messages import IncomingMessage, Outcome, Reply
from bot.core.replies import clean_name

log = logging.getLogger("bot.adapters.discord_adapter")

PLATFORM = "discord"

DMS_CLOSED_NOTE = (
    "I tried to send you the rest of my reply as a private message, but your direct messages are closed. "
    "To receive it, allow direct messages from server members in your privacy settings and message me directly."
)
NOT_A_MODERATOR = (
    "Sorry, the /faq commands are for the club's moderators (a moderator role or the Manage Server permission)."
)
NO_MENTIONS = discord.AllowedMentions.none()


@dataclass(frozen=True, slots=True)
class DiscordAdapterSettings:
    """What the adapter needs from the config (the lead maps ``discord:`` settings into it)."""

    guild_ids: tuple[int, ...] = ()
    listen_channel_ids: tuple[int, ...] = ()
    moderator_role_ids: tuple[int, ...] = ()
    moderator_channel_id: int | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()

    @classmethod
    def from_settings(cls, discord_settings: Any) -> DiscordAdapterSettings:
        """From ``bot.config.DiscordSettings`` (or anything with the same attribute names)."""
        return cls(
            guild_ids=tuple(discord_settings.guild_ids),
            listen_channel_ids=tuple(discord_settings.listen_channel_ids),
            moderator_role_ids=tuple(discord_settings.moderator_role_ids),
            moderator_channel_id=discord_settings.moderator_channel_id,
            shard_count=getattr(discord_settings, "shard_count", None),
            shard_ids=tuple(getattr(discord_settings, "shard_ids", ())),
        )


class EngineLike(Protocol):
    """Anything that turns an incoming message into an outcome."""

    async def handle(self, msg: IncomingMessage) -> Outcome: ...


#: Called with the event name and the exception whenever handling one event failed (after logging it).
ErrorHook = Callable[[str, BaseException], object]


def shown_name(user: discord.abc.User) -> str:
    """The user's display name as the engine may put it in a reply: one clean line, markdown escaped, so a name
    like ``**x**`` or ``[x](https://…)`` shows literally instead of formatting or linking (mentions never ping:
    every send uses AllowedMentions.none())."""
    return discord.utils.escape_markdown(clean_name(user.display_name, 32))


class FormIntercept(Protocol):
    """The moderators' forms (``discord_faq_ui``): a button that opens a form is theirs, taken before the defer."""

    async def intercept(self, interaction: discord.Interaction[Any], payload: str) -> bool: ...


class DiscordBase(DiscordOps):
    """The adapter's shared parts; ``DiscordAdapter`` sets the attributes."""

    engine: EngineLike
    settings: DiscordAdapterSettings
    client: discord.Client
    faq_forms: FormIntercept | None
    _on_error: ErrorHook | None

    # ------------------------------------------------------------------ shared
    def _report(self, event: str, error: BaseException) -> None:
        log.error("discord: %s failed", event, exc_info=error)
        if self._on_error is not None:
            try:
                self._on_error(event, error)
            except Exception:
                log.exception("discord: on_error hook failed")

    async def _handle(self, msg: IncomingMessage) -> Outcome | None:
        try:
            return await self.engine.handle(msg)
        except Exception as exc:
            self._report("engine", exc)
            return None

    def _is_moderator(self, user: discord.abc.User, permissions: discord.Permissions | None = None) -> bool:
        if not isinstance(user, discord.Member):
            return False
        perms = permissions if permissions is not None else user.guild_permissions
        # Manage Server counts only in the servers the operator listed: anyone can create a server and invite a
        # public bot (issue 14); configured moderator roles count everywhere (a role id belongs to one server)
        if (perms.manage_guild or perms.administrator) and user.guild.id in self.settings.guild_ids:
            return True
        return any(user.get_role(role_id) is not None for role_id in self.settings.moderator_role_ids)

    async def _send(self, target: discord.abc.Messageable, reply: Reply, *, reference: discord.Message | None = None,
                    ) -> None:
        chunks = split_message(reply.text) or ([""] if reply.choices or reply.attachment else [])
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            view = choices_view(reply.choices) if last and reply.choices else MISSING
            ref = reference.to_reference(fail_if_not_exists=False) if reference is not None and i == 0 else None
            file = attachment_file(reply) if last else MISSING  # /mydata's JSON file goes with the last part (issue 16)
            try:
                await target.send(  # type: ignore[call-overload]
                    content=chunk or None, view=view, allowed_mentions=NO_MENTIONS, reference=ref, file=file
                )
            except Exception as exc:
                self._send_failed(exc)
                raise

    async def _send_followup(self, interaction: discord.Interaction[Any], reply: Reply, ephemeral: bool) -> None:
        chunks = split_message(reply.text) or ([""] if reply.choices or reply.attachment else [])
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            view = choices_view(reply.choices) if last and reply.choices else MISSING
            try:
                await interaction.followup.send(
                    content=chunk, view=view, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS,
                    file=attachment_file(reply) if last else MISSING,
                )
            except Exception as exc:
                self._send_failed(exc)
                raise



def attachment_file(reply: Reply) -> Any:
    """The reply's attachment as a discord.File (MISSING when it has none)."""
    if reply.attachment is None:
        return MISSING
    return discord.File(io.BytesIO(reply.attachment.data), filename=reply.attachment.filename)
