"""Telegram adapter support: settings, start-up errors, the command list, and Bot API calls with retries."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.core.messages import Choice, IncomingMessage, Outcome
from bot.core.outbox import Throttled
from bot.core.ports import DeliveryError

if TYPE_CHECKING:
    from bot.config import TelegramSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Start: what I can do"),
    ("help", "How to use this bot"),
    ("ask", "Ask a question about back pain after running"),
    ("triage", "A few questions to point you to the right help"),
    ("cancel", "Stop the current questions"),
    ("followups", "Check-in messages: /followups on or off"),
    ("mydata", "What I store about you"),
    ("consent", "Your consent to storing health data: see or withdraw"),
    ("forget", "Delete what I store about you"),
    ("faq", "Moderators: /faq review, show, phrase, add, edit, undo, unanswered, stats, reload"),
)
WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ATTEMPTS = 3


from bot.core.ports import StartupError  # noqa: E402  (one class for every platform, re-exported)


class EngineLike(Protocol):
    """What the adapter needs from the engine."""

    async def handle(self, msg: IncomingMessage) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class TelegramAdapterSettings:
    """Telegram settings the adapter needs (the lead maps ``bot.config`` into this)."""

    api_base_url: str | None = None
    mode: Literal["polling", "webhook", "worker"] = "polling"
    #: local: the process that received an update handles it; shared: whichever process holds its chat
    inbox: Literal["local", "shared"] = "local"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str | None = field(default=None, repr=False)
    moderator_user_ids: tuple[int, ...] = ()
    moderator_chat_id: int | None = None
    poll_timeout: float = 10.0
    #: messages a second this process sends at most, all chats together (Telegram allows about 30 per bot)
    send_rate: float = 30.0


def settings_from_config(
    telegram: TelegramSettings, environ: Mapping[str, str] | None = None
) -> TelegramAdapterSettings:
    """Map the ``telegram:`` config section (plus TELEGRAM_WEBHOOK_SECRET from the environment) to adapter settings."""
    env = os.environ if environ is None else environ
    secret = env.get(WEBHOOK_SECRET_ENV, "").strip() or None
    return TelegramAdapterSettings(
        api_base_url=telegram.api_base_url,
        mode=telegram.mode,
        webhook_url=telegram.webhook_url,
        webhook_listen=telegram.webhook_listen,
        webhook_port=telegram.webhook_port,
        webhook_secret=secret,
        moderator_user_ids=tuple(telegram.moderator_user_ids),
        moderator_chat_id=telegram.moderator_chat_id,
        send_rate=telegram.send_rate,
        inbox=telegram.inbox,
    )


def check_settings(s: TelegramAdapterSettings, token: str, *, has_inbox: bool) -> None:
    """What the adapter refuses to start with (one line each)."""
    if not token or not token.strip():
        raise StartupError("Telegram: no bot token; set TELEGRAM_TOKEN")
    if s.mode not in ("polling", "webhook", "worker"):
        raise StartupError(f"Telegram: telegram.mode must be polling, webhook or worker, not {s.mode!r}")
    if s.mode == "webhook":
        if not s.webhook_url:
            raise StartupError("Telegram: webhook mode needs telegram.webhook_url")
        if not s.webhook_secret or not SECRET_RE.match(s.webhook_secret):
            raise StartupError(
                "Telegram: webhook mode needs TELEGRAM_WEBHOOK_SECRET (1-256 characters A-Z a-z 0-9 _ -)"
            )
    if (s.mode == "worker" or s.inbox == "shared") and not has_inbox:
        raise StartupError("Telegram: telegram.inbox: shared (and mode: worker) needs the database, not :memory:")
    if s.mode == "worker" and s.inbox != "shared":
        raise StartupError("Telegram: telegram.mode: worker handles the shared inbox: set telegram.inbox: shared")


class TokenRedactor(logging.Filter):
    """Replaces the token in log records: the Bot API puts it in every URL, and httpx (INFO) and PTB (DEBUG: "Set Bot
    API URL: .../bot<token>") log URLs. ``install()`` hooks the record factory, so every logger is covered, including
    formatted tracebacks; a logger filter would only cover the one logger it is attached to."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret
        self._previous: Callable[..., logging.LogRecord] | None = None
        self._factory: Callable[..., logging.LogRecord] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        secret = self._secret
        if not secret:
            return True
        message = record.getMessage()
        if secret in message:
            record.msg, record.args = message.replace(secret, "<token>"), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if secret in text:
                record.exc_text = text.replace(secret, "<token>")  # formatters use exc_text when it is set
        return True

    def install(self) -> None:
        if self._factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if self._factory is not None:  # a pass-through once uninstalled under someone else's factory
                self.filter(record)
            return record

        self._previous, self._factory = previous, factory
        logging.setLogRecordFactory(factory)

    def uninstall(self) -> None:
        factory, self._factory = self._factory, None
        if factory is not None and logging.getLogRecordFactory() is factory and self._previous is not None:
            logging.setLogRecordFactory(self._previous)
        self._previous = None


def api_urls(api_base_url: str | None) -> tuple[str, str]:
    """PTB's ``base_url`` and ``base_file_url`` for a Bot API server root (None: api.telegram.org)."""
    root = (api_base_url or "https://api.telegram.org").rstrip("/")
    if root.endswith("/bot"):
        root = root[: -len("/bot")]
    return f"{root}/bot", f"{root}/file/bot"


def keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup | None:
    """One button per row; ``callback_data`` is the core's payload (checked <= 64 bytes by Choice)."""
    if not choices:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(c.label, callback_data=c.payload)] for c in choices])


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns about int vs timedelta on access
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def call_once(action: Callable[[], Awaitable[T]], on_retry: Callable[[], None] | None = None) -> T:
    """Run one Bot API call for the outbox: flood control becomes Throttled (the outbox pauses only that chat), a
    network error is retried twice (``on_retry`` told each time), every other failure becomes DeliveryError."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await action()
        except RetryAfter as exc:
            raise Throttled(retry_after_seconds(exc)) from exc
        except Forbidden as exc:
            raise DeliveryError(f"Telegram: {exc.message}", permanent=True) from exc
        except BadRequest as exc:
            permanent = "chat not found" in exc.message.lower()
            raise DeliveryError(f"Telegram: {exc.message}", permanent=permanent) from exc
        except TimedOut as exc:  # may have been delivered: don't send it twice
            raise DeliveryError("Telegram: request timed out") from exc
        except NetworkError as exc:
            if attempt == ATTEMPTS:
                raise DeliveryError(f"Telegram: network error ({exc.message})") from exc
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(0.5 * attempt)
        except TelegramError as exc:
            raise DeliveryError(f"Telegram: {exc.message}") from exc
    raise AssertionError("unreachable")
