"""Discord sharding (issue 18): each process runs the slice of shards its config names, and Discord's IDENTIFY
payloads say so. Two real discord.py clients (two bot processes' worth) against the fake gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings
from bot.config import ConfigError, DiscordSettings, load_settings
from bot.core.messages import IncomingMessage, Outcome, Reply
from tests.adapters.fake_discord import FakeDiscord, FakeGuild

TOKEN = "fake-token.abc.def"


class Echo:
    """An engine that answers every message and remembers which process (adapter) it belongs to."""

    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []

    async def handle(self, msg: IncomingMessage) -> Outcome:
        self.seen.append(msg)
        return Outcome((Reply("ok"),), "answer")


@asynccontextmanager
async def processes(fake: FakeDiscord, *slices: DiscordSettings) -> AsyncIterator[list[tuple[DiscordAdapter, Echo]]]:
    """One started adapter per config slice, each with its own engine (as separate processes would have)."""
    async with AsyncExitStack() as stack:
        started: list[tuple[DiscordAdapter, Echo]] = []
        for discord_settings in slices:
            engine = Echo()
            adapter = DiscordAdapter(
                engine, DiscordAdapterSettings.from_settings(discord_settings), TOKEN, guild_ready_timeout=0
            )
            adapter.identify_pause = 0.0  # discord.py's 5 s between a process's IDENTIFYs: the fake has no limit
            await adapter.start()
            stack.push_async_callback(adapter.stop)
            started.append((adapter, engine))
        yield started
    assert fake.unhandled == [], "the bot used routes the fake does not know"


def _guilds_per_shard(fake: FakeDiscord, count: int) -> dict[int, FakeGuild]:
    """One guild on each shard: Discord's rule reads the id's timestamp bits (id >> 22), so the ids are made so."""
    base = 300_000_000_000  # a 2020s timestamp in milliseconds, as in real snowflakes
    guilds = {s: fake.add_guild(f"club {s}", channels=1, guild_id=((base * count + s) << 22) + 7) for s in range(count)}
    assert all(fake.shard_of(g.id, count) == s for s, g in guilds.items())
    return guilds


async def test_two_processes_identify_with_their_own_shard_ids(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        guilds = _guilds_per_shard(fake, 4)
        member = fake.add_user("alice")
        first = DiscordSettings(shard_count=4, shard_ids=(0, 1))
        second = DiscordSettings(shard_count=4, shard_ids=(2, 3))
        with fake.patch():
            async with processes(fake, first, second) as running:
                shards = sorted(tuple(identify["shard"]) for identify in fake.identifies)
                assert shards == [(0, 4), (1, 4), (2, 4), (3, 4)]
                (a, a_engine), (b, b_engine) = running
                assert a.health() == {"connected": True, "shard_count": 4, "shards": [0, 1], "shards_down": []}
                assert b.health() == {"connected": True, "shard_count": 4, "shards": [2, 3], "shards_down": []}
                # each process sees only its shards' servers
                assert {g.id for g in a.client.guilds} == {guilds[0].id, guilds[1].id}
                assert {g.id for g in b.client.guilds} == {guilds[2].id, guilds[3].id}
                # a message in a server on shard 3 reaches the second process only
                mark = fake.mark()
                await fake.message(member, "hello", channel_id=guilds[3].channel_ids[0], mention_bot=True)
                await fake.wait_sent(1, since=mark)
                assert [m.chat_id for m in b_engine.seen] == [str(guilds[3].channel_ids[0])]
                assert a_engine.seen == []
                # DMs come on shard 0: the first process answers them
                await fake.message(member, "hi in private")
                await fake.wait_sent(1, since=mark + 1)
                assert [m.is_private for m in a_engine.seen] == [True]
        # the slash commands were synced once, by the process running shard 0
        syncs = [r for r in fake.requests if r[0] == "PUT" and r[1].endswith("/commands")]
        assert len(syncs) == 1


async def test_unset_runs_every_recommended_shard_in_one_process() -> None:
    async with FakeDiscord() as fake:
        fake.recommended_shards = 3
        _guilds_per_shard(fake, 3)
        with fake.patch():
            async with processes(fake, DiscordSettings()) as running:
                adapter, _ = running[0]
                assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 3), (1, 3), (2, 3)]
                assert adapter.health()["shards"] == [0, 1, 2]
                assert len(adapter.client.guilds) == 3
                assert any(r[1] == "/api/v10/gateway/bot" for r in fake.requests)  # asked Discord how many
            assert adapter.health()["connected"] is False  # stopped


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("discord: {shard_ids: [0]}", "discord.shard_ids: needs discord.shard_count"),
        ("discord: {shard_count: 2, shard_ids: [0, 2]}", "discord.shard_ids: shard 2 does not exist"),
        ("discord: {shard_count: 2, shard_ids: [1, 1]}", "discord.shard_ids: a shard is listed twice"),
        ("discord: {shard_count: 0}", "discord.shard_count: must be at least 1"),
        ("discord: {shard_count: 2, shard_ids: [-1]}", "discord.shard_ids[0]: must be at least 0"),
    ],
)
def test_shard_settings_are_checked_with_their_line(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# runbot\n" + content + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value).startswith(f"{cfg}:2: {message}"), str(info.value)
