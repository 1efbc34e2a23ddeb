"""Discord sharding and what the Discord adapter tells the operations endpoint (connected shards, send failures).

Sharding: ``discord.shard_count`` and ``discord.shard_ids`` give each process a slice of the shards (discord.py's
``AutoShardedClient`` with ``shard_ids``); unset, one process runs every shard Discord recommends (GET /gateway/bot).
Discord sends a server's events to shard ``(server_id >> 22) % shard_count`` and direct messages to shard 0, so
only the process running shard 0 gets DMs; any process can send (REST), so check-ins go out from every process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot.core.telemetry import NoTelemetry, Telemetry

#: discord.py waits this long before each IDENTIFY after a process's first (Discord allows one per 5 s per bucket)
IDENTIFY_PAUSE = 5.0


def shard_options(shard_count: int | None, shard_ids: tuple[int, ...]) -> dict[str, Any]:
    """The AutoShardedClient options for the configured slice (none: every recommended shard in this process)."""
    if shard_count is None:
        return {}
    return {"shard_count": shard_count, "shard_ids": list(shard_ids) if shard_ids else None}


def runs_shard_zero(shard_count: int | None, shard_ids: tuple[int, ...]) -> bool:
    """Whether this process runs shard 0 (the one that gets DMs): it alone syncs the slash commands."""
    return shard_count is None or not shard_ids or 0 in shard_ids


class ShardPacing:
    """Mixin for the discord.py client: the pause before each IDENTIFY after the first is the adapter's
    ``identify_pause`` (discord.py's 5 s by default; tests against the fake gateway set 0)."""

    adapter: Any

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.adapter.identify_pause)


class DiscordOps:
    """Mixin of ``DiscordAdapter``: its ``client`` and ``engine`` are read here."""

    client: discord.AutoShardedClient
    engine: Any
    receive: bool

    @property
    def telemetry(self) -> Telemetry:
        found = getattr(self.engine, "telemetry", None)
        return found if found is not None else NoTelemetry()

    def _send_failed(self, exc: BaseException) -> None:
        permanent = isinstance(exc, discord.Forbidden | discord.NotFound)
        self.telemetry.send_failed("discord", permanent=permanent)

    def health(self) -> dict[str, object]:
        """Connected: logged in, ready, and every shard of this process has its gateway connection open."""
        client = self.client
        if not self.receive:
            return {"connected": not client.is_closed() and client.user is not None}
        shards = {sid: not info.is_closed() for sid, info in client.shards.items()}
        connected = client.is_ready() and not client.is_closed() and bool(shards) and all(shards.values())
        return {
            "connected": connected, "shard_count": client.shard_count,
            "shards": sorted(sid for sid, up in shards.items() if up),
            "shards_down": sorted(sid for sid, up in shards.items() if not up),
        }

    async def queue_depths(self) -> dict[str, int]:
        return {}  # discord.py sends at once (its rate limiter waits inside the call): no queue of ours
