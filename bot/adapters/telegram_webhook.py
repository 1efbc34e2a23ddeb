"""Telegram webhook receiver: an update is stored in the inbox before Telegram gets its 200.

PTB's own webhook server (``Updater.start_webhook``) answers 200 as soon as the update is in its in-memory queue, so a
crash right after loses it (Telegram will not send it again). This small aiohttp server checks a request as PTB's
``TelegramHandler`` does (POST only, ``Content-Type: application/json``, the ``X-Telegram-Bot-Api-Secret-Token``
header equal to the secret: missing or wrong -> 403; a body that is not an update -> 400) and then hands the update
to the same intake path the polling loop uses (``Intake.accept``: stored in the inbox, then queued for its chat).
Only after that does it answer 200. If the inbox cannot be written (locked, full), the intake handles the update
from memory and logs one warning: the answer, above all an emergency one, never waits for storage.

Requests that arrive together are stored in one transaction (one fsync for the lot).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.ext import ExtBot

from bot.adapters.telegram_support import StartupError, TelegramAdapterSettings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: a request still being stored at shutdown gets this long to finish (then Telegram sends it again later)
SHUTDOWN_SECONDS = 1.0
#: largest body accepted (Telegram's updates are a few KB; PTB/tornado allow more, nothing needs it)
MAX_BODY = 1024 * 1024


class WebhookReceiver:
    """Listens on ``listen:port`` at ``path``; ``accept`` stores and queues a batch of updates."""

    def __init__(
        self,
        *,
        listen: str,
        port: int,
        path: str,
        secret: str,
        bot: Bot,
        accept: Callable[[list[Update]], Awaitable[None]],
    ) -> None:
        self.listen = listen
        self.port = port
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        self._secret = secret.encode()
        self._bot = bot
        self._accept = accept
        self._runner: web.AppRunner | None = None
        self._batch: list[tuple[Update, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.received = 0

    async def start(self) -> None:
        """Raises OSError when the address cannot be bound."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self._post)
        if self.path != "/":
            app.router.add_post(self.path + "/", self._post)  # PTB accepts the path with or without a final slash
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_SECONDS, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.listen, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("Telegram: receiving webhooks on %s:%d%s", self.listen, self.port, self.path)

    async def stop(self) -> None:
        """Stop listening; requests being stored finish first (up to SHUTDOWN_SECONDS)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer}, timeout=SHUTDOWN_SECONDS)

    # ----------------------------------------------------------------- one request
    def _refuse(self, request: web.Request) -> web.Response | None:
        """PTB's ``_validate_post``: the content type exactly ``application/json``, the secret header present and
        equal to the secret (compared in constant time)."""
        if request.headers.get("Content-Type") != "application/json":
            return web.Response(status=HTTPStatus.FORBIDDEN)
        token = request.headers.get(SECRET_HEADER)
        if not token:
            log.debug("Telegram webhook: a request without the secret token")
            return web.Response(status=HTTPStatus.FORBIDDEN, reason="Request did not include the secret token")
        if not hmac.compare_digest(token.encode(), self._secret):
            log.debug("Telegram webhook: a request with the wrong secret token")
            return web.Response(status=HTTPStatus.FORBIDDEN, reason="Request had the wrong secret token")
        return None

    async def _post(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            data = json.loads(await request.read())
            if not isinstance(data, dict):
                raise TypeError("not an object")
            update = Update.de_json(data, self._bot)
        except web.HTTPException:
            raise
        except Exception as exc:  # not JSON, or not an update: Telegram is told, nothing is queued
            log.warning("Telegram webhook: a request that is not an update (%s)", type(exc).__name__)
            return web.Response(status=HTTPStatus.BAD_REQUEST, reason="Update could not be processed")
        if update is None:  # an empty object: PTB answers 200 and queues nothing
            return web.json_response({})
        if isinstance(self._bot, ExtBot):
            self._bot.insert_callback_data(update)  # as PTB does (arbitrary callback data, when configured)
        try:
            await self._stored(update)
        except Exception:  # not taken: Telegram sends it again
            return web.Response(status=HTTPStatus.INTERNAL_SERVER_ERROR)
        return web.json_response({})  # 200 only now: the update is in the inbox (or being answered from memory)

    async def _stored(self, update: Update) -> None:
        """Wait until ``accept`` took the update (together with whatever arrived meanwhile)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((update, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="telegram-webhook-store")
        await asyncio.shield(done)

    async def _write(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            error: BaseException | None = None
            try:
                await self._accept([u for u, _ in batch])
                self.received += len(batch)
            except Exception as exc:  # accept handles storage trouble itself; anything else must not hang requests
                log.error("Telegram webhook: could not take %d update(s)", len(batch), exc_info=exc)
                error = exc
            finally:
                for _, done in batch:
                    if done.done():
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)


async def start_webhook(
    settings: TelegramAdapterSettings, bot: Bot, accept: Callable[[list[Update]], Awaitable[None]],
    allowed_updates: list[str],
) -> WebhookReceiver:
    """Listen, then ask Telegram to send updates here (setWebhook with the secret). Raises StartupError when the
    address cannot be bound, TelegramError when Telegram refuses the webhook (the receiver is closed again)."""
    url, secret = settings.webhook_url, settings.webhook_secret
    assert url is not None and secret is not None  # checked by the adapter before it connects
    receiver = WebhookReceiver(
        listen=settings.webhook_listen, port=settings.webhook_port, path=urlsplit(url).path, secret=secret, bot=bot,
        accept=accept,
    )
    try:
        await receiver.start()
    except OSError as exc:
        raise StartupError(
            f"Telegram: cannot listen for webhooks on {settings.webhook_listen}:{settings.webhook_port} "
            f"({exc.strerror or exc})"
        ) from None
    try:
        await bot.set_webhook(url=url, secret_token=secret, allowed_updates=allowed_updates, max_connections=40)
    except BaseException:
        await receiver.stop()
        raise
    return receiver
