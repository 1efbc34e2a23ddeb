"""The Discord adapter: carries messages, slash commands and button clicks between discord.py and the engine.

Its parts: ``discord_support`` (settings, names, sending), ``discord_messages`` (gateway messages),
``discord_interactions`` (slash commands and buttons), ``discord_ui`` (buttons), ``discord_ops`` (shards, telemetry),
``discord_faq_ui`` (the moderators' forms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.discord_commands import build_commands
from bot.adapters.discord_faq_ui import DiscordFaqForms
from bot.adapters.discord_interactions import DiscordInteractions
from bot.adapters.discord_messages import DiscordMessages
from bot.adapters.discord_ops import IDENTIFY_PAUSE, ShardPacing, runs_shard_zero, shard_options
from bot.adapters.discord_support import (
    DMS_CLOSED_NOTE,
    NO_MENTIONS,
    NOT_A_MODERATOR,
    PLATFORM,
    DiscordAdapterSettings,
    EngineLike,
    ErrorHook,
    shown_name,
)
from bot.adapters.discord_ui import NOT_YOURS, ChoiceButton, split_message
from bot.core.messages import ChatRef, Reply
from bot.core.ports import DeliveryError, StartupError

if TYPE_CHECKING:
    from bot.core.moderation import ModeratorDesk

__all__ = [
    "DMS_CLOSED_NOTE", "NOT_A_MODERATOR", "NOT_YOURS", "PLATFORM", "DiscordAdapter", "DiscordAdapterSettings",
    "EngineLike", "StartupError", "shown_name", "split_message",
]

log = logging.getLogger(__name__)


class _Client(ShardPacing, discord.AutoShardedClient):
    """discord.py's client wired to one adapter; runs the shards of ``discord.shard_ids`` (all when unset)."""

    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = True
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS, **options)
        self.adapter = adapter
        self.tree: app_commands.CommandTree[_Client] = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        # The button callback finds the adapter through this attribute (see ChoiceButton.callback).
        self.on_choice = adapter._on_choice

    async def setup_hook(self) -> None:
        await self.adapter._setup()

    async def on_ready(self) -> None:
        log.info("discord: connected as %s to %d server(s)", self.user, len(self.guilds))
        self.adapter._ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter._on_message(message)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("discord: error in event %s", event_method)

    async def _on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        self.adapter._report("slash command", error)


class DiscordAdapter(DiscordMessages, DiscordInteractions):
    """Runs a discord.py client and translates between Discord and the engine (implements ports.Adapter)."""

    platform = PLATFORM

    def __init__(
        self,
        engine: EngineLike,
        settings: DiscordAdapterSettings,
        token: str,
        *,
        on_error: ErrorHook | None = None,
        guild_ready_timeout: float = 2.0,
        receive: bool = True,
        moderation: ModeratorDesk | None = None,
    ) -> None:
        """``receive=False``: log in over HTTP only (no gateway connection, no command sync) to send follow-ups."""
        self.receive = receive
        self.engine = engine
        self.settings = settings
        self._token = token
        self._on_error = on_error
        self.identify_pause = IDENTIFY_PAUSE
        sharding = shard_options(settings.shard_count, settings.shard_ids)
        self.client = _Client(self, guild_ready_timeout=guild_ready_timeout, **sharding)
        #: the moderators' FAQ forms and editing commands (issue 17); None without a moderators' desk
        self.faq_forms = DiscordFaqForms(moderation, self) if moderation is not None else None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Gateway messages fully handled (answered, ignored or failed); lets tests and health checks see progress.
        self.messages_handled = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Log in, sync commands and connect; returns once Discord reports ready. Raises StartupError."""
        if not self.receive:
            try:
                await self.client.login(self._token)
            except Exception as exc:
                await self.client.close()
                raise self._startup_error(exc) from None
            return
        task = self._task = asyncio.create_task(self.client.start(self._token), name="discord-client")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self.stop()
            raise
        finally:
            ready.cancel()
        if not task.done():
            task.add_done_callback(self._client_finished)
            return
        error = None if task.cancelled() else task.exception()
        await self.stop()
        raise self._startup_error(error) from None

    def _startup_error(self, error: BaseException | None) -> StartupError:
        if isinstance(error, discord.LoginFailure):
            text = "Discord rejected the bot token: check DISCORD_TOKEN (reset it in the Developer Portal if needed)."
        elif isinstance(error, discord.PrivilegedIntentsRequired):
            text = ("Discord refused the connection: enable the Message Content intent for the bot in the "
                    "Developer Portal (Bot > Privileged Gateway Intents).")
        else:
            text = f"Discord could not be started: {type(error).__name__}: {error}"
        if self._token:
            text = text.replace(self._token, "<token>")
        return StartupError(text.splitlines()[0] if text else "Discord could not be started")

    def _client_finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("discord: client stopped: %s", self._startup_error(task.exception()))

    async def stop(self) -> None:
        """Close the connection and wait for the client task to end."""
        await self.client.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
            self._task = None

    async def _setup(self) -> None:
        """Runs once after login: register the buttons and commands, sync the commands."""
        self.client.add_dynamic_items(ChoiceButton)
        if not self.receive or not runs_shard_zero(self.settings.shard_count, self.settings.shard_ids):
            return  # one process syncs the commands: the one running shard 0
        tree = self.client.tree
        commands = build_commands(self._run_command)
        if self.faq_forms is not None:
            self.faq_forms.extend(commands, self._run_command)
        for command in commands:
            tree.add_command(command)
        try:
            if self.settings.guild_ids:
                for guild_id in self.settings.guild_ids:
                    guild = discord.Object(id=guild_id)
                    tree.copy_global_to(guild=guild)
                    await tree.sync(guild=guild)
            else:
                await tree.sync()
        except discord.HTTPException as exc:
            # Usually the bot was invited without the applications.commands scope; messages still work.
            log.error("discord: could not sync slash commands (%s); re-invite with applications.commands", exc)

    # ------------------------------------------------------------------ port
    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        """Deliver replies to the user's DMs (follow-ups). Raises DeliveryError."""
        try:
            user_id = int(target.user_id)
        except ValueError:
            raise DeliveryError(f"not a Discord user id: {target.user_id!r}", permanent=True) from None
        if self.client.is_closed() or self.client.user is None:
            raise DeliveryError("Discord is not connected")
        try:
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            for reply in replies:
                await self._send(user, reply)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DeliveryError(f"cannot DM Discord user {user_id}: {exc.text or exc.status}", permanent=True) from exc
        except discord.HTTPException as exc:
            raise DeliveryError(f"Discord error {exc.status} sending to {user_id}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(f"network error sending to Discord user {user_id}: {type(exc).__name__}") from exc

    async def notify_moderators(self, text: str) -> bool:
        """Post a note (e.g. knowledge reload problems) in the moderators' channel; False if none or it failed."""
        channel_id = self.settings.moderator_channel_id
        if channel_id is None:
            return False
        try:
            channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return False
            await self._send(channel, Reply(text))
            return True
        except discord.HTTPException as exc:
            self._report("moderator note", exc)
            return False
