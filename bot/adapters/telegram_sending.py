"""Telegram sending: Replies -> sendMessage calls queued in the per-chat outbox (``bot.core.outbox``).

A mixin of ``TelegramAdapter``: one update's public replies are one outbox job for the chat and its private replies
one job for the user's private chat, queued at once (synchronously) so two updates' replies never interleave; the
returned awaitable waits for them and posts a note when a private message could not be delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from telegram import Chat, InlineKeyboardMarkup, InputFile, Message, ReplyParameters

from bot.adapters.telegram_ops import TelegramOps
from bot.adapters.telegram_support import call_once, keyboard
from bot.adapters.telegram_text import deep_link, split_message
from bot.core.messages import Attachment, Outcome, Reply
from bot.core.outbox import Outbox, ShuttingDown
from bot.core.ports import DeliveryError

if TYPE_CHECKING:
    from telegram.ext import Application

log = logging.getLogger("bot.adapters.telegram_adapter")

SENT_PRIVATELY = "I've sent you a private message."


class TelegramSending(TelegramOps):
    """Sending through the outbox; the adapter provides ``application``, ``bot_username`` and ``_outbox``."""

    _outbox: Outbox | None

    @property
    def application(self) -> Application:  # type: ignore[type-arg]
        raise NotImplementedError

    def _actions(
        self, chat_id: int, reply: Reply, reply_to: int | None = None, thread: int | None = None,
        sent: Callable[[Reply], Awaitable[None]] | None = None,
    ) -> list[Callable[[], Awaitable[Message]]]:
        """The sendMessage calls for one Reply (split if long; the keyboard goes on the last part); ``sent`` is
        awaited right after the last part went out."""
        text = reply.text if reply.text.strip() else ("Please choose:" if reply.choices else "")
        chunks = split_message(text)
        bot = self.application.bot
        actions: list[Callable[[], Awaitable[Message]]] = []
        for index, chunk in enumerate(chunks):
            markup = keyboard(reply.choices) if index == len(chunks) - 1 else None
            quote = (
                ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to is not None and index == 0
                else None
            )

            async def action(
                chunk: str = chunk, markup: InlineKeyboardMarkup | None = markup, quote: ReplyParameters | None = quote,
                last: bool = index == len(chunks) - 1,
            ) -> Message:
                message = await call_once(
                    lambda: bot.send_message(
                        chat_id, chunk, reply_markup=markup, reply_parameters=quote, message_thread_id=thread
                    ),
                    self._network_retry,
                )
                if last and sent is not None:
                    await sent(reply)
                return message

            actions.append(action)
        if reply.attachment is not None:  # /mydata's JSON file: a document after the text (issue 16)
            actions.append(self._document(chat_id, reply.attachment, thread))
        return actions

    def _document(self, chat_id: int, file: Attachment, thread: int | None) -> Callable[[], Awaitable[Message]]:
        bot = self.application.bot

        async def action() -> Message:
            return await call_once(
                lambda: bot.send_document(
                    chat_id, InputFile(file.data, filename=file.filename), message_thread_id=thread
                ),
                self._network_retry,
            )

        return action

    def _submit(self, chat_id: int, actions: list[Any], *, urgent: bool = False) -> asyncio.Future[list[Any]]:
        if self._outbox is None:
            raise DeliveryError("Telegram adapter is not running")
        return self._outbox.submit(chat_id, actions, urgent=urgent)

    async def _send_reply(
        self, chat_id: int, reply: Reply, reply_to: int | None = None, thread: int | None = None
    ) -> list[Message]:
        """Send one Reply through the chat's outbox queue and wait for it."""
        return await self._submit(
            chat_id, self._actions(chat_id, reply, reply_to, thread), urgent=reply.escalation is not None
        )

    async def notify_moderators(self, text: str) -> bool:
        """Post a note (e.g. knowledge reload problems) in the moderators' chat; False if none or it failed."""
        chat_id = self._settings.moderator_chat_id
        if chat_id is None or self._app is None:
            return False
        try:
            await self._send_reply(chat_id, Reply(text))
        except DeliveryError as exc:
            log.warning("Telegram: could not notify the moderators' chat: %s", exc)
            return False
        return True

    def _deliver(
        self,
        outcome: Outcome,
        *,
        chat: Chat,
        user_id: int,
        name: str,
        reply_to: int | None,
        thread: int | None = None,
        sent: Callable[[Reply], Awaitable[None]] | None = None,
    ) -> Awaitable[None]:
        """Queue the replies now (public ones to the chat, private ones to the user's private chat, each as one job
        so two updates' replies never interleave); the returned awaitable waits for them and posts a note when a
        private message could not be delivered."""
        is_private = chat.type == Chat.PRIVATE
        urgent = any(r.escalation is not None for r in outcome.replies)
        public: list[Any] = []
        private: list[Any] = []
        for reply in outcome.replies:
            if reply.private and not is_private:
                private += self._actions(user_id, reply, sent=sent)
            else:
                public += self._actions(chat.id, reply, None if is_private else reply_to, thread, sent=sent)
        public_job = self._submit(chat.id, public, urgent=urgent) if public else None
        private_job = self._submit(user_id, private, urgent=urgent) if private else None
        return self._settle(outcome, chat, name, reply_to, thread, public_job, private_job)

    async def _settle(
        self,
        outcome: Outcome,
        chat: Chat,
        name: str,
        reply_to: int | None,
        thread: int | None,
        public_job: asyncio.Future[list[Any]] | None,
        private_job: asyncio.Future[list[Any]] | None,
    ) -> None:
        private_ok = private_failed = False
        if private_job is not None:
            try:
                await private_job
                private_ok = True
            except ShuttingDown:
                raise
            except DeliveryError as exc:
                log.info("Telegram: private message to a group member failed: %s", exc)
                private_failed = True
        if public_job is not None:
            try:
                await public_job
            except ShuttingDown:
                raise
            except DeliveryError as exc:
                log.warning("Telegram: could not deliver a reply to chat %s: %s", chat.id, exc)
                return
        note = None
        if private_failed:
            if outcome.kind == "triage":  # Start sends "/start triage": the check begins in the private chat
                then, payload = "to begin the check", "triage"
            else:
                then, payload = "then ask me again there", "help"
            note = (
                f"{name}, I can't message you privately yet. Open a chat with me and press Start {then}: "
                f"{deep_link(self.bot_username, payload)}"
            )
        elif private_ok and public_job is None:
            note = SENT_PRIVATELY
        if note:
            try:
                await self._send_reply(chat.id, Reply(note), reply_to, thread)
            except ShuttingDown:
                raise
            except DeliveryError as exc:
                log.warning("Telegram: could not post a note in chat %s: %s", chat.id, exc)
