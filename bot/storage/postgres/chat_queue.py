"""Several processes drain one durable inbox on PostgreSQL: ``bot.core.store.ChatQueue``, as on SQLite
(bot/storage/sqlite/chat_queue.py, which explains the leases). Each statement is one atomic upsert or delete; the
unique key of ``inbox_chats`` makes a second process's insert wait for the first's row and see its fresh lease."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.store import InboxUnavailable
from bot.storage.postgres.inbox import PgInbox

log = logging.getLogger(__name__)


class PgChatQueue:
    """The shared side of one platform's inbox for one process (``owner``)."""

    def __init__(self, inbox: PgInbox, owner: str, *, lease: timedelta = timedelta(seconds=30)) -> None:
        self.inbox = inbox
        self.owner = owner
        self.lease = lease

    @property
    def platform(self) -> str:
        return self.inbox.platform  # set by the adapter once the bot's id is known

    async def open(self) -> None:
        """The tables come with migration 0006: nothing to create."""

    async def claim(self, limit: int, busy: Sequence[str] = ()) -> list[str]:
        """Hold up to ``limit`` chats that have pending updates and no other holder (oldest update first), leaving
        out ``busy`` (this process's chats being worked on)."""
        now = datetime.now(UTC)
        async with self.inbox._con() as con:
            rows = await con.fetch(
                "INSERT INTO inbox_chats AS c (platform, chat_key, owner, lease_until)"
                " SELECT platform, chat_key, $1, $2 FROM inbox i WHERE i.platform = $3 AND i.state = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM inbox_chats h WHERE h.platform = i.platform"
                " AND h.chat_key = i.chat_key AND h.lease_until >= $4 AND h.owner <> $1)"
                " AND i.chat_key <> ALL($6::text[])"
                " GROUP BY platform, chat_key ORDER BY MIN(update_id) LIMIT $5"
                " ON CONFLICT (platform, chat_key) DO UPDATE SET owner = excluded.owner,"
                " lease_until = excluded.lease_until WHERE c.lease_until < $4 OR c.owner = excluded.owner"
                " RETURNING chat_key",
                self.owner, now + self.lease, self.platform, now, limit, list(busy),
            )
        return [str(r[0]) for r in rows]

    async def updates(self, chat_key: str, limit: int = 20) -> list[tuple[int, dict[str, Any]]]:
        """The chat's pending updates, oldest first (an unreadable one is marked done and skipped)."""
        async with self.inbox._con() as con:
            rows = await con.fetch(
                "SELECT update_id, payload FROM inbox WHERE platform = $1 AND chat_key = $2 AND state = 'pending'"
                " ORDER BY update_id LIMIT $3", self.platform, chat_key, limit,
            )
        out = []
        for row in rows:
            try:
                out.append((int(row["update_id"]), json.loads(row["payload"])))
            except ValueError:
                log.warning("inbox: update %s is unreadable; skipped", row["update_id"])
                self.inbox.done(int(row["update_id"]))
        return out

    async def renew(self, chat_keys: Sequence[str]) -> set[str]:
        """Extend this process's leases; returns the chats still held (a chat whose lease ran out may be gone)."""
        if not chat_keys:
            return set()
        async with self.inbox._con() as con:
            rows = await con.fetch(
                "UPDATE inbox_chats SET lease_until = $1 WHERE platform = $2 AND owner = $3"
                " AND chat_key = ANY($4::text[]) RETURNING chat_key",
                datetime.now(UTC) + self.lease, self.platform, self.owner, list(chat_keys),
            )
        return {str(r[0]) for r in rows}

    async def release(self, chat_key: str) -> None:
        """Let the chat go (its done marks must be written first: ``inbox.flush()``)."""
        async with self.inbox._con() as con:
            await con.execute(
                "DELETE FROM inbox_chats WHERE platform = $1 AND chat_key = $2 AND owner = $3",
                self.platform, chat_key, self.owner,
            )

    async def release_all(self) -> None:
        with contextlib.suppress(InboxUnavailable):
            async with self.inbox._con() as con:
                await con.execute("DELETE FROM inbox_chats WHERE owner = $1", self.owner)

    async def hold(self, name: str) -> bool:
        """Take or keep the named lease (True) unless another process holds it and its lease has not run out."""
        now = datetime.now(UTC)
        async with self.inbox._con() as con:
            return await con.fetchval(
                "INSERT INTO leases AS l (name, owner, lease_until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE"
                " SET owner = excluded.owner, lease_until = excluded.lease_until"
                " WHERE l.owner = excluded.owner OR l.lease_until < $4 RETURNING owner",
                name, self.owner, now + self.lease, now,
            ) is not None

    async def let_go(self, name: str) -> None:
        with contextlib.suppress(InboxUnavailable):
            async with self.inbox._con() as con:
                await con.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, self.owner)
