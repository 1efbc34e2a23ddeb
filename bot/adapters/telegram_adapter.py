"""Telegram adapter: carries messages between python-telegram-bot and the engine.

Runs inside our own event loop (``initialize``; never ``run_polling``). Updates come through the ``Intake``
(``telegram_intake``: its own getUpdates loop, or our webhook receiver ``telegram_webhook``; both store an update in
the durable inbox before Telegram may forget it) and are handled in order per chat, concurrently across chats;
replies go out through the per-chat outbox (``telegram_sending``). Plain text only (no parse_mode), so user and
knowledge text needs no escaping; display names are defused (``safe_name``). Groups: only commands, @mentions and
replies to the bot are handled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram import BotCommand, CallbackQuery, Chat, ChatMember, Message, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.adapters import telegram_faq_flow as faq_flow
from bot.adapters.telegram_intake import Intake, open_inbox
from bot.adapters.telegram_sending import SENT_PRIVATELY, TelegramSending
from bot.adapters.telegram_support import (
    COMMANDS,
    EngineLike,
    StartupError,
    TelegramAdapterSettings,
    TokenRedactor,
    api_urls,
    check_settings,
    settings_from_config,
)
from bot.adapters.telegram_text import safe_name, strip_mention
from bot.adapters.telegram_webhook import WebhookReceiver, start_webhook
from bot.core import payloads
from bot.core.commands_parse import parse_command
from bot.core.messages import ChatRef, IncomingMessage, Outcome, Reply
from bot.core.outbox import Outbox, OutboxLimits
from bot.core.payloads import Kind
from bot.core.ports import DeliveryError
from bot.core.replies import SORRY
from bot.core.store import ChatQueue, Inbox

if TYPE_CHECKING:
    from bot.core.moderation import ModeratorDesk

__all__ = ["COMMANDS", "SENT_PRIVATELY", "StartupError", "TelegramAdapter", "TelegramAdapterSettings", "api_urls",
           "settings_from_config"]

log = logging.getLogger(__name__)

_KNOWN = frozenset(name for name, _ in COMMANDS)
_ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

NOT_YOURS = "These buttons belong to someone else's question. Ask me yourself and I'll answer you."
#: HTTP connections for sending (one chat's hanging request must not hold the only connection)
CONNECTIONS = 64
#: shutdown: time to finish what was fetched before the rest is left pending in the inbox
DRAIN_SECONDS = 2.5


def _thread(message: Message) -> int | None:
    """The forum topic a group message belongs to, so answers stay in that topic."""
    return message.message_thread_id if message.is_topic_message else None


class TelegramAdapter(TelegramSending):
    """The Telegram platform connection (implements ``bot.core.ports.Adapter``)."""

    platform = "telegram"

    def __init__(
        self,
        engine: EngineLike,
        settings: TelegramAdapterSettings,
        token: str,
        *,
        inbox: Inbox | None = None,
        queue: ChatQueue | None = None,
        receive: bool = True,
        moderation: ModeratorDesk | None = None,
    ) -> None:
        """``inbox``: where received updates wait until answered (None: memory only). ``receive=False``: send only
        (``runbot followups run-due``): no getUpdates, no webhook listener, no command menu. ``queue``: the inbox's
        shared side (``telegram.inbox: shared``, the poller's lease; ``telegram_drain``). ``moderation``: the
        moderators' desk, for the /faq add and /faq edit conversation (``telegram_faq_flow``)."""
        self._engine = engine
        self._settings = settings
        self._token = token
        self._inbox = inbox
        self._queue = queue
        self._receive = receive
        self._app: Application | None = None  # type: ignore[type-arg]
        self._redact = TokenRedactor(token)
        self._outbox: Outbox | None = None
        self._intake: Intake | None = None
        self._webhook: WebhookReceiver | None = None
        self.faq_flow = faq_flow.TelegramFaqFlow(moderation) if moderation is not None else None

    def __repr__(self) -> str:
        return f"TelegramAdapter(mode={self._settings.mode!r})"

    @property
    def application(self) -> Application:  # type: ignore[type-arg]
        if self._app is None:
            raise RuntimeError("the Telegram adapter is not running")
        return self._app

    @property
    def bot_username(self) -> str:
        return self.application.bot.username

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect, register commands and start receiving updates. Raises StartupError."""
        if self._app is not None:
            raise RuntimeError("the Telegram adapter is already running")
        check_settings(self._settings, self._token, has_inbox=self._inbox is not None or not self._receive)
        self._redact.install()
        base_url, base_file_url = api_urls(self._settings.api_base_url)
        builder = (
            ApplicationBuilder().token(self._token).base_url(base_url).base_file_url(base_file_url)
            .connection_pool_size(CONNECTIONS).pool_timeout(10.0)
        )
        # no PTB Updater: polling is the Intake's own getUpdates loop, webhooks our own receiver (it stores first)
        app = builder.updater(None).build()
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message), group=0)
        app.add_handler(CallbackQueryHandler(self._on_callback), group=0)
        app.add_error_handler(self._on_error)
        host = urlsplit(base_url).netloc
        try:
            await app.initialize()
        except InvalidToken:
            await self._abort(app)
            raise StartupError(
                f"Telegram rejected the bot token (401 Unauthorized from {host}); check TELEGRAM_TOKEN"
            ) from None
        except TelegramError as exc:
            await self._abort(app)
            raise StartupError(f"Telegram: cannot reach the Bot API at {host} ({type(exc).__name__})") from None
        self._app = app
        notices = getattr(self._engine, "notices", None)
        if self._receive and notices is not None:  # the first-message notice counts once delivered
            notices.after_delivery(self.platform)
        rate = self._settings.send_rate
        self._outbox = Outbox(
            OutboxLimits(global_rate=rate, global_burst=rate), is_group=lambda key: isinstance(key, int) and key < 0,
            on_retry=self._flood_retry, on_failure=self._send_failed,
        )
        if not self._receive:
            log.info("Telegram: connected as @%s to send only", app.bot.username)
            return
        try:
            await self._set_commands()
            queue = self._queue
            if self._inbox is not None:
                # update ids are per bot: another token on the same database must not inherit this bot's offset
                self._inbox.platform = f"telegram:{app.bot.id}"
                if not await open_inbox(self._inbox, queue, self._settings.inbox == "shared"):
                    self._inbox = queue = None
            self._intake = Intake(
                app, self._inbox, poll_timeout=self._settings.poll_timeout, allowed_updates=_ALLOWED_UPDATES,
                queue=queue, shared=self._settings.inbox == "shared",
            )
            mode = self._settings.mode
            webhook = mode == "webhook"
            if mode == "polling":
                await app.bot.delete_webhook()  # getUpdates is refused while a webhook is set
            await self._intake.start(webhook=mode != "polling")  # the last run's unanswered updates first
            if webhook:
                self._webhook = await start_webhook(self._settings, app.bot, self._intake.accept, _ALLOWED_UPDATES)
        except TelegramError as exc:  # deleteWebhook / setWebhook refused, e.g. "bad webhook: HTTPS url needed"
            await self.stop()
            raise StartupError(f"Telegram: could not start receiving updates: {exc.message}") from None
        except BaseException:
            await self.stop()
            raise
        log.info("Telegram adapter started as @%s (%s)", app.bot.username, self._settings.mode)

    async def _abort(self, app: Application) -> None:  # type: ignore[type-arg]
        await app.bot.shutdown()
        self._redact.uninstall()

    async def _set_commands(self) -> None:
        try:
            await self.application.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS])
        except TelegramError:
            log.warning("Telegram: setMyCommands failed; commands still work, the menu may be stale")

    async def stop(self) -> None:
        """Stop receiving; finish what was fetched for up to DRAIN_SECONDS (the rest stays in the inbox and is
        answered after the restart); close connections (reverse of start)."""
        app = self._app
        if app is None:
            return
        try:
            intake = self._intake  # kept while draining: handlers still hand their deliveries to it
            if intake is not None:
                await intake.stop_receiving()
            webhook, self._webhook = self._webhook, None
            if webhook is not None:
                await webhook.stop()  # no new requests; those being stored finish
            if intake is not None:
                await intake.drain(DRAIN_SECONDS)
            if self._outbox is not None:
                await self._outbox.close(0.3)
            if intake is not None:
                await intake.cancel_deliveries()
                if self._settings.mode == "polling":
                    await intake.confirm()
            if self._inbox is not None:
                await self._inbox.close()
            await app.shutdown()
        finally:
            self._app = None
            self._intake = None
            self._outbox = None
            self._redact.uninstall()

    # ----------------------------------------------------------------- sending

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        """Deliver replies to the user's private chat (follow-ups). Raises DeliveryError."""
        if self._app is None:
            raise DeliveryError("Telegram adapter is not running")
        # A Telegram user's private chat has the user's id, whatever chat the ChatRef came from.
        try:
            chat_id = int(target.user_id)
        except ValueError:
            raise DeliveryError(f"not a Telegram user id: {target.user_id!r}", permanent=True) from None
        actions = [a for reply in replies for a in self._actions(chat_id, reply)]
        await self._submit(chat_id, actions, urgent=any(r.escalation for r in replies))

    async def _hand_over(
        self, update: Update, incoming: IncomingMessage, outcome: Outcome, delivery: Awaitable[None]
    ) -> None:
        """Let the Intake track the delivery (the chat's next update is handled meanwhile); without one, wait."""
        notices = getattr(self._engine, "notices", None)  # told when the delivery finished or was cut off
        delivery = delivery if notices is None else notices.watch(incoming, outcome.replies, delivery)
        if self._intake is not None:
            self._intake.track(update.update_id, delivery)  # type: ignore[arg-type]
        else:
            await delivery

    def _sent_hook(self, incoming: IncomingMessage) -> Callable[[Reply], Awaitable[None]] | None:
        """Called as each reply reaches Telegram: a first-message notice is recorded as shown right then."""
        notices = getattr(self._engine, "notices", None)
        return None if notices is None else lambda reply: notices.sent(incoming, reply)

    # ----------------------------------------------------------------- receiving

    def _engine_text(self, message: Message, is_private: bool) -> str | None:
        """The text for the engine, or None when the bot was not addressed."""
        text = message.text or ""
        username = self.bot_username
        command = parse_command(text)
        if command is not None and command.well_formed:
            if not command.is_for(username):
                return None
            if command.name in _KNOWN or is_private:  # "/start triage" (deep link) is the engine's to read
                return command.text
            return None
        if is_private:
            return text
        mentioned, rest = strip_mention(text, username)
        if mentioned:
            return rest
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == self.application.bot.id:
            return text
        return None

    async def _is_moderator(self, user_id: int, chat: Chat) -> bool:
        if user_id in self._settings.moderator_user_ids:
            return True
        # Admins of the configured moderators' chat count, never the admins of whatever group the command was sent
        # in: anyone can create a group and own it (issue 14). Unconfigured, reports are for `runbot report` only.
        chat_id = self._settings.moderator_chat_id
        if chat_id is None:
            return False
        try:
            member = await self.application.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.warning("Telegram: getChatMember failed, treating as not a moderator: %s", exc)
            return False
        return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user, chat = update.message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None or user.is_bot:
            return
        is_private = chat.type == Chat.PRIVATE
        text = self._engine_text(message, is_private)
        if text is None:
            return
        # Only /faq needs to know; the engine refuses it politely unless is_moderator is set.
        moderator = False
        command = parse_command(text)
        if command is not None and command.name == "faq":
            moderator = await self._is_moderator(user.id, chat)
            # ids are logged so an operator can fill in moderator_user_ids / moderator_chat_id
            log.info("Telegram: /faq from user %s in chat %s (moderator: %s)", user.id, chat.id, moderator)
        name = safe_name(user.first_name)
        incoming = IncomingMessage(
            platform=self.platform,
            user_id=str(user.id),
            chat_id=str(chat.id),
            text=text,
            is_private=is_private,
            display_name=name,
            is_moderator=moderator,
        )
        outcome = await faq_flow.handle(self, incoming, user.id, chat)  # the engine, or a moderator's form
        delivery = self._deliver(
            outcome, chat=chat, user_id=user.id, name=name, reply_to=message.message_id, thread=_thread(message),
            sent=self._sent_hook(incoming),
        )
        await self._hand_over(update, incoming, outcome, delivery)

    @staticmethod
    def _owner(message: Message) -> int | None:
        """Whose question a bot message answers: the private chat's user, or the user whose message it quotes."""
        if message.chat.type == Chat.PRIVATE:
            return message.chat.id
        quoted = message.reply_to_message
        if quoted is not None and quoted.from_user is not None and not quoted.from_user.is_bot:
            return quoted.from_user.id
        return None

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query: CallbackQuery | None = update.callback_query
        if query is None:
            return
        message = query.message if isinstance(query.message, Message) else None
        owner = self._owner(message) if message is not None else None
        if owner is not None and owner != query.from_user.id:
            # someone else's buttons: tell only the clicker (a callback answer), leave the owner's message alone
            try:
                await query.answer(NOT_YOURS, show_alert=True)
            except TelegramError as exc:
                log.info("Telegram: answerCallbackQuery failed (query too old?): %s", exc)
            return
        try:  # acknowledge first, so the button stops spinning whatever happens next
            await query.answer()
        except TelegramError as exc:
            log.info("Telegram: answerCallbackQuery failed (query too old?): %s", exc)
        if not query.data or query.message is None:
            return
        chat, user = query.message.chat, query.from_user
        name = safe_name(user.first_name)
        incoming = IncomingMessage(
            platform=self.platform,
            user_id=str(user.id),
            chat_id=str(chat.id),
            choice=query.data,
            is_private=chat.type == Chat.PRIVATE,
            display_name=name,
            is_moderator=payloads.kind_of(query.data) is Kind.MODERATION and await self._is_moderator(user.id, chat),
        )
        outcome = await faq_flow.handle(self, incoming, user.id, chat)
        if message is not None:
            try:
                await query.edit_message_reply_markup(reply_markup=None)
            except TelegramError as exc:
                log.info("Telegram: could not remove the pressed keyboard: %s", exc)
        thread = _thread(message) if message is not None else None
        delivery = self._deliver(
            outcome, chat=chat, user_id=user.id, name=name, reply_to=None, thread=thread, sent=self._sent_hook(incoming)
        )
        await self._hand_over(update, incoming, outcome, delivery)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log every unexpected error; tell the user when it happened while handling their update."""
        log.error("Telegram: error while handling an update", exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None or self._app is None:
            return
        try:
            await self._send_reply(update.effective_chat.id, Reply(SORRY))
        except DeliveryError:
            log.info("Telegram: could not send the apology either")
