"""Several processes drain one durable inbox: each chat is held by one process at a time, its updates in order.

``telegram.inbox: shared``. A process holds a chat with a lease row (``inbox_chats``: owner and expiry, renewed
while it works); it takes only chats nobody holds, handles their pending updates in update-id order, marks each
done once its replies went out, and lets the chat go once none is left. A process that dies loses its chats when
their leases expire, and another takes them (the update being handled then may be answered twice; nothing is lost).

``leases`` holds named single-holder leases: the getUpdates poller (Telegram allows one consumer per bot).

Plain SQL with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` and ``RETURNING``: a claim is one statement, so two
processes never hold one chat (SQLite serialises writers; PostgreSQL's unique index makes the second insert see the
first's row and its fresh lease). The tables come with migration 0006; the queue also creates them when it opens
(an in-memory inbox, or a file made before that migration).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.core.store import InboxUnavailable
from bot.storage.sqlite.rows import fetch_all

if TYPE_CHECKING:
    from bot.storage.sqlite.inbox import SQLiteInbox

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_chats (
    platform TEXT NOT NULL, chat_key TEXT NOT NULL, owner TEXT NOT NULL, lease_until TEXT NOT NULL,
    PRIMARY KEY (platform, chat_key)
);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS inbox_chat_pending ON inbox (platform, state, chat_key, update_id);
"""
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _at(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_FORMAT)


class SQLiteChatQueue:
    """The shared side of one platform's inbox for one process (``owner``); implements ``bot.core.store.ChatQueue``."""

    def __init__(self, inbox: SQLiteInbox, owner: str, *, lease: timedelta = timedelta(seconds=30)) -> None:
        self.inbox = inbox
        self.owner = owner
        self.lease = lease

    @property
    def platform(self) -> str:
        return self.inbox.platform  # set by the adapter once the bot's id is known

    async def open(self) -> None:
        await self._write_script(_SCHEMA)

    # ----------------------------------------------------------------- chats
    async def claim(self, limit: int, busy: Sequence[str] = ()) -> list[str]:
        """Hold up to ``limit`` chats that have pending updates and no other holder (oldest update first): chats
        nobody holds, and this process's own idle ones (see ``release``); ``busy``: this process's chats being worked
        on (left out: they would fill the limit)."""
        now = datetime.now(UTC)
        rows = await self._write(
            "INSERT INTO inbox_chats (platform, chat_key, owner, lease_until)"
            " SELECT platform, chat_key, ?, ? FROM inbox i WHERE i.platform = ? AND i.state = 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM inbox_chats c WHERE c.platform = i.platform AND c.chat_key = i.chat_key"
            " AND c.lease_until >= ? AND c.owner <> ?)"
            f" AND i.chat_key NOT IN ({','.join('?' * len(busy))})"
            " GROUP BY platform, chat_key ORDER BY MIN(update_id) LIMIT ?"
            " ON CONFLICT (platform, chat_key) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
            " WHERE inbox_chats.lease_until < ? OR inbox_chats.owner = excluded.owner RETURNING chat_key",
            (self.owner, _at(now + self.lease), self.platform, _at(now), self.owner, *busy, limit, _at(now)),
        )
        return [str(r[0]) for r in rows]

    async def updates(self, chat_key: str, limit: int = 20) -> list[tuple[int, dict[str, Any]]]:
        """The chat's pending updates, oldest first (an unreadable one is marked done and skipped)."""
        try:
            rows = await fetch_all(
                self.inbox.db,
                "SELECT update_id, payload FROM inbox WHERE platform = ? AND chat_key = ? AND state = 'pending'"
                " ORDER BY update_id LIMIT ?",
                (self.platform, chat_key, limit),
            )
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc)) from exc
        out = []
        for update_id, payload in rows:
            try:
                out.append((int(update_id), json.loads(payload)))
            except ValueError:
                log.warning("inbox: update %s is unreadable; skipped", update_id)
                self.inbox.done(int(update_id))
        return out

    async def renew(self, chat_keys: Sequence[str]) -> set[str]:
        """Extend this process's leases; returns the chats still held (a chat whose lease ran out may be gone)."""
        keys = list(chat_keys)
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        rows = await self._write(
            f"UPDATE inbox_chats SET lease_until = ? WHERE platform = ? AND owner = ? AND chat_key IN ({marks})"
            " RETURNING chat_key", (_at(datetime.now(UTC) + self.lease), self.platform, self.owner, *keys),
        )
        return {str(r[0]) for r in rows}

    async def release(self, chat_key: str) -> None:
        """Let the chat go now (at shutdown; its done marks must be written first: ``inbox.flush()``). A chat with
        nothing pending is not released: it stays with this process for the rest of its lease, so a conversation's
        next message finds the process that remembers it (a safety question waiting for its answer, the notice)."""
        await self._write(
            "DELETE FROM inbox_chats WHERE platform = ? AND chat_key = ? AND owner = ? RETURNING chat_key",
            (self.platform, chat_key, self.owner),
        )

    async def release_all(self) -> None:
        with contextlib.suppress(InboxUnavailable):
            await self._write("DELETE FROM inbox_chats WHERE owner = ? RETURNING chat_key", (self.owner,))

    # ----------------------------------------------------------------- named leases
    async def hold(self, name: str) -> bool:
        """Take or keep the named lease (True) unless another process holds it and its lease has not run out."""
        now = datetime.now(UTC)
        rows = await self._write(
            "INSERT INTO leases (name, owner, lease_until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET owner = excluded.owner, lease_until = excluded.lease_until"
            " WHERE leases.owner = excluded.owner OR leases.lease_until < ? RETURNING owner",
            (name, self.owner, _at(now + self.lease), _at(now)),
        )
        return bool(rows)

    async def let_go(self, name: str) -> None:
        with contextlib.suppress(InboxUnavailable):
            await self._write("DELETE FROM leases WHERE name = ? AND owner = ? RETURNING name", (name, self.owner))

    # ----------------------------------------------------------------- plumbing
    async def _write(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            async with self.inbox._locked():
                return await fetch_all(self.inbox.db, sql, params)
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc)) from exc

    async def _write_script(self, script: str) -> None:
        try:
            async with self.inbox._locked():
                await self.inbox.db.executescript(script)
        except (aiosqlite.Error, OSError) as exc:
            raise InboxUnavailable(str(exc)) from exc
