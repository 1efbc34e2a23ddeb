"""The Discord adapter: carries messages, slash commands and button clicks between discord.py and the engine."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import discord
from discord import app_commands
from discord.utils import MISSING

from bot.adapters.discord_commands import build_commands
from bot.adapters.discord_faq_ui import DiscordFaqForms
from bot.adapters.discord_ops import IDENTIFY_PAUSE, DiscordOps, ShardPacing, runs_shard_zero, shard_options
from bot.adapters.discord_ui import NOT_YOURS, ChoiceButton, button_owner, choices_view, disabled_view, split_message
from bot.core.messages import ChatRef, IncomingMessage, Outcome, Reply
from bot.core.ports import DeliveryError
from bot.core.replies import SORRY, clean_name

if TYPE_CHECKING:
    from bot.core.moderation import ModeratorDesk

__all__ = ["DiscordAdapter", "DiscordAdapterSettings", "StartupError", "split_message"]

log = logging.getLogger(__name__)

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


from bot.core.ports import StartupError  # noqa: E402  (one class for every platform, re-exported)


def shown_name(user: discord.abc.User) -> str:
    """The user's display name as the engine may put it in a reply: one clean line, markdown escaped, so a name
    like ``**x**`` or ``[x](https://…)`` shows literally instead of formatting or linking (mentions never ping:
    every send uses AllowedMentions.none())."""
    return discord.utils.escape_markdown(clean_name(user.display_name, 32))


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


class DiscordAdapter(DiscordOps):
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
            file = _file(reply) if last else MISSING  # /mydata's JSON file goes with the last part (issue 16)
            try:
                await target.send(  # type: ignore[call-overload]
                    content=chunk or None, view=view, allowed_mentions=NO_MENTIONS, reference=ref, file=file
                )
            except Exception as exc:
                self._send_failed(exc)
                raise

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

    async def _send_followup(self, interaction: discord.Interaction[Any], reply: Reply, ephemeral: bool) -> None:
        chunks = split_message(reply.text) or ([""] if reply.choices or reply.attachment else [])
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            view = choices_view(reply.choices) if last and reply.choices else MISSING
            try:
                await interaction.followup.send(
                    content=chunk, view=view, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS,
                    file=_file(reply) if last else MISSING,
                )
            except Exception as exc:
                self._send_failed(exc)
                raise

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


def _file(reply: Reply) -> Any:
    """The reply's attachment as a discord.File (MISSING when it has none)."""
    if reply.attachment is None:
        return MISSING
    return discord.File(io.BytesIO(reply.attachment.data), filename=reply.attachment.filename)
