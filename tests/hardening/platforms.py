"""Both real adapters against the fake servers (tests/adapters/fake_*.py), on the real engine and a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings
from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.bootstrap import Runtime
from tests.adapters.fake_discord import FakeDiscord, FakeGuild, FakeUser
from tests.adapters.fake_telegram import FakeBotAPI

#: shaped like real tokens (Discord: base64 id . timestamp . hmac; Telegram: bot id : 35 characters)
DISCORD_TOKEN = "MTEyMzQ1Njc4OTAxMjM0NTY3OA.GhIjKl.Zx9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
TELEGRAM_TOKEN = "7123456789:AAHk3bVZr8Yq0xN5mP2sT9wU4vC6dE1fG7h"
TELEGRAM_BOT = "runbot_test_bot"
GROUP = -100555


@dataclass
class DiscordWorld:
    fake: FakeDiscord
    adapter: DiscordAdapter
    guild: FakeGuild

    @property
    def channel(self) -> int:
        return self.guild.channel_ids[0]


@asynccontextmanager
async def discord_bot(rt: Runtime, users: list[FakeUser] | None = None, *, token: str = DISCORD_TOKEN,
                      fake: FakeDiscord | None = None) -> AsyncIterator[DiscordWorld]:
    """A started DiscordAdapter on ``rt.engine`` (the fake must already be entered and patched by the caller)."""
    assert fake is not None
    guild = next(iter(fake.guilds.values()), None) or fake.add_guild()
    adapter = DiscordAdapter(rt.engine, DiscordAdapterSettings(guild_ids=(guild.id,)), token, guild_ready_timeout=0)
    await adapter.start()
    try:
        yield DiscordWorld(fake, adapter, guild)
    finally:
        await adapter.stop()
    assert fake.unhandled == []


@asynccontextmanager
async def telegram_bot(rt: Runtime, api: FakeBotAPI, *, token: str | None = None) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(rt.engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}"),
                              token or api.token)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()
