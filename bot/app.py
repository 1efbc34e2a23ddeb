"""Running the bot: start order, signals, task supervision, shutdown in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.bootstrap import Runtime, build
from bot.config import Settings, token
from bot.core.digest import WeeklyDigest
from bot.core.ports import Adapter, StartupError
from bot.core.text import warm_up
from bot.storage import make_moderation_log

if TYPE_CHECKING:
    from bot.ops.server import OpsServer

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 4.0
START_TIMEOUT = 60.0
#: housekeeping: flush counters every tick, apply the retention period every RETENTION_EVERY ticks (about hourly)
HOUSEKEEPING_SECONDS = 5.0
RETENTION_EVERY = 720
SENT_KEYS_KEPT = timedelta(days=30)


__all__ = ["App", "StartupError", "make_adapters"]


def make_adapters(runtime: Runtime, platforms: set[str] | None, *, receive: bool = True) -> list[Adapter]:
    """Adapters for the requested platforms (None: every enabled platform that has a token). ``receive=False``:
    send-only connections (no poller, gateway or webhook listener) for `runbot followups run-due`."""
    s = runtime.settings
    wanted = platforms if platforms is not None else {
        p for p, enabled in (("discord", s.discord.enabled), ("telegram", s.telegram.enabled)) if enabled
    }
    adapters: list[Adapter] = []
    for platform in sorted(wanted):
        tok = token(platform)
        if tok is None:
            env = {"discord": "DISCORD_TOKEN", "telegram": "TELEGRAM_TOKEN"}[platform]
            if platforms is not None:
                raise StartupError(f"{platform}: set the {env} environment variable to the bot's token")
            log.info("%s is enabled but %s is not set; skipping it", platform, env)
            continue
        if platform == "discord":
            from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings

            adapters.append(DiscordAdapter(runtime.engine, DiscordAdapterSettings.from_settings(s.discord), tok,
                                           receive=receive, moderation=runtime.moderation))
        else:
            from bot.adapters.telegram_adapter import TelegramAdapter
            from bot.adapters.telegram_adapter import settings_from_config as tg_settings
            from bot.storage import make_chat_queue, make_inbox

            # on the Store's database (SQLite: its connection and write lock, one writer per process on the file)
            inbox = make_inbox(runtime.store, "telegram") if receive else None
            queue = make_chat_queue(inbox) if inbox is not None else None  # shared inbox, the poller's lease
            adapters.append(TelegramAdapter(runtime.engine, tg_settings(s.telegram), tok, inbox=inbox, queue=queue,
                                            receive=receive, moderation=runtime.moderation))
    if not adapters:
        raise StartupError("no platform to run: set DISCORD_TOKEN and/or TELEGRAM_TOKEN (or use `runbot chat`)")
    return adapters


class App:
    """Owns the event loop's long-running parts: store, adapters, scheduler, knowledge watcher."""

    def __init__(
        self,
        settings: Settings,
        *,
        platforms: set[str] | None = None,
        db_path: str | Path | None = None,
        knowledge_path: str | Path | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.settings = settings
        self.platforms = platforms
        self.runtime = runtime or build(settings, db_path=db_path, knowledge_path=knowledge_path)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.housekeeping_seconds = HOUSEKEEPING_SECONDS
        #: the operations endpoint while running (``ops.listen`` set), else None
        self.ops: OpsServer | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, adapters: list[Adapter] | None = None) -> int:
        """Start everything, wait for SIGINT/SIGTERM or stop(), then stop in reverse order."""
        rt = self.runtime
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await rt.start()
        await asyncio.to_thread(warm_up)  # the look-alike table, off the loop before the first message
        started: list[Adapter] = []
        self.ops = None
        try:
            address = self.settings.ops.address
            if address is not None:  # first, so an orchestrator sees "starting" (503) rather than nothing
                from bot.ops.server import OpsServer

                self.ops = OpsServer(rt, *address)
                await self.ops.start()
            adapters = adapters if adapters is not None else make_adapters(rt, self.platforms)
            for adapter in adapters:
                try:
                    await asyncio.wait_for(adapter.start(), timeout=START_TIMEOUT)
                except TimeoutError:
                    raise StartupError(f"{adapter.platform}: could not connect within {START_TIMEOUT:.0f} s") from None
                started.append(adapter)
                rt.add_adapter(adapter)
                log.info("%s adapter started", adapter.platform)
            scheduler = asyncio.create_task(rt.scheduler.run(), name="followups")
            self._tasks.append(scheduler)
            watcher = rt.knowledge_watcher()
            if self.settings.knowledge.watch:
                self._tasks.append(asyncio.create_task(watcher.run(), name="knowledge-watch"))
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            if rt.moderation is not None:
                self._tasks.append(asyncio.create_task(rt.moderation.editor.warm_up(), name="faq-check-warm-up"))
            if self.settings.moderation.digest:
                self._tasks.append(asyncio.create_task(self.digest().run(), name="weekly-digest"))
            if self.ops is not None:
                self.ops.health.scheduler_task = scheduler
                self.ops.health.started = True
            await self._stop.wait()
            log.info("shutting down")
        finally:
            rt.scheduler.stop()
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE)
            for adapter in reversed(started):
                try:
                    await asyncio.wait_for(adapter.stop(), timeout=SHUTDOWN_GRACE)
                except Exception:
                    log.exception("error while stopping %s", adapter.platform)
            if self.ops is not None:
                await self.ops.stop()
            await rt.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return 0

    def digest(self) -> WeeklyDigest:
        """The weekly digest to every started platform's moderators' channel or chat."""
        rt, m = self.runtime, self.settings.moderation
        return WeeklyDigest(rt.store, make_moderation_log(rt.store), rt.report_problem, rt.clock,
                            day=m.digest_day, hour=m.digest_hour)

    async def _housekeeping(self) -> None:
        """Flush buffered counters every few seconds and apply the retention period once an hour."""
        store = self.runtime.store
        ticks = 0
        while True:
            await asyncio.sleep(self.housekeeping_seconds)
            ticks += 1
            try:
                await store.flush()
                if ticks % RETENTION_EVERY == 1:
                    removed = await store.purge_older_than(self.settings.privacy.retention_days)
                    removed += await store.purge_health(triage_days=self.settings.privacy.triage_days)
                    removed += await self._purge_sent_keys()
                    if removed:
                        log.info("retention: removed %d old row(s)", removed)
            except Exception:
                log.exception("housekeeping failed")

    async def _purge_sent_keys(self) -> int:
        """A delivered check-in's key is never reused (the next one has the next number): a month is ample. Best
        effort, like the rest of retention: a locked or full database is logged in one line and tried again later."""
        try:
            return await self.runtime.store.purge_sent_keys(self.runtime.clock.now() - SENT_KEYS_KEPT)
        except Exception as exc:  # StoreUnavailable (locked, full, not open): never a traceback here
            log.warning("retention: could not remove old check-in keys: %s", exc or type(exc).__name__)
            return 0

    async def run_due_once(self) -> int:
        """`runbot followups run-due`: connect send-only (the platforms' HTTP APIs: no poller, gateway or webhook
        listener, so it runs safely beside the bot), send what is due, stop."""
        rt = self.runtime
        await rt.start()
        await asyncio.to_thread(warm_up)  # the look-alike table, off the loop before the first message
        started: list[Adapter] = []
        try:
            for adapter in make_adapters(rt, self.platforms, receive=False):
                await adapter.start()
                started.append(adapter)
                rt.add_adapter(adapter)
            return await rt.scheduler.run_due()
        finally:
            for adapter in reversed(started):
                await adapter.stop()
            await rt.close()
