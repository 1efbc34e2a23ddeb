"""When the one-time first-message notice counts as shown.

By default it is recorded (``users.notice_shown``) when the engine composes it. A platform whose adapter reports
delivery (``after_delivery``; the Telegram adapter does) gets it recorded only once the replies carrying it were
handed to the platform: a stop or crash between composing and delivering leaves the user without the mark, so the
replayed update (durable inbox) shows it again. Until then this process remembers the notice as on its way, so the
user's next message, handled while the first replies still wait in the outbox, does not repeat it.

A runner with no row (only questions asked so far: nothing about them is stored, issue 16) is remembered in this
process's memory (bounded), and, when several processes answer the same people (PostgreSQL), in ``shared``
(``SeenNotices``: a one-way fingerprint of the sender, never their id). With memory only, a restart may show it once
more. Once they have a row (their consent, a setting), the next message records it there. While storage is down the
notice comes from memory too (``first_offline``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol

from bot.core.lru import LruCache
from bot.core.messages import IncomingMessage, Reply
from bot.core.outbox import ShuttingDown
from bot.core.resilience import OfflineNotices
from bot.core.store import STORE_ERRORS, Store, User

log = logging.getLogger(__name__)

#: users whose notice this process recorded, remembered (the Store's user cache may still hold the row read before)
RECENT = 10_000


def _who(msg: IncomingMessage) -> str:
    return f"{msg.platform}:{msg.user_id}"


class SeenNotices(Protocol):
    """Who has seen the notice, shared by every process of the bot; answers within a fraction of a second."""

    async def seen(self, who: str) -> bool: ...

    async def remember(self, who: str) -> None: ...


class Notices:
    """The first-message notices composed and not yet delivered, per ``platform:user``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._platforms: set[str] = set()
        self._due: dict[str, tuple[User, Reply]] = {}
        #: recorded in this process: a message whose user row was read just before the write must not repeat it
        self._recorded: LruCache[str, bool] = LruCache(RECENT)
        self._offline = OfflineNotices()
        #: shared with the other processes (set by bootstrap on PostgreSQL); None: this process's memory only
        self.shared: SeenNotices | None = None

    def after_delivery(self, platform: str) -> None:
        """``platform``'s adapter calls ``delivered``/``undelivered`` for every message it had the engine handle
        (called when it starts: a notice cut off by its last stop is no longer on its way)."""
        self._platforms.add(platform)
        self._due = {who: due for who, due in self._due.items() if due[0].platform != platform}

    def on_its_way(self, msg: IncomingMessage) -> bool:
        """Composed and not yet delivered, or recorded by this process (maybe after the user's row was read)."""
        who = _who(msg)
        return who in self._due or self._recorded.get(who) is not None

    async def first(self, msg: IncomingMessage, user: User, text: str, private: bool) -> Reply | None:
        """The notice to put before the replies to ``msg`` (whose user's row says it was not shown), or None: on
        its way, or shown by this process before the user had a row (recorded in the row now)."""
        if not self.on_its_way(msg) and self.shared is not None and await self.shared.seen(_who(msg)):
            self._recorded[_who(msg)] = True  # another process showed it
        if self.on_its_way(msg):
            if user.stored and self.shown(msg) and _who(msg) not in self._due:
                await self._store.set_notice_shown(user)
            return None
        reply = Reply(text, private=private)
        await self.composed(msg, user, reply)
        return reply

    async def composed(self, msg: IncomingMessage, user: User, reply: Reply) -> None:
        """The notice (``reply``) is among the replies to ``msg``: record it now, or when the platform says it was
        delivered."""
        if msg.platform in self._platforms:
            self._due[_who(msg)] = (user, reply)
            return
        if user.stored:
            await self._store.set_notice_shown(user)
        await self._remember(msg)

    async def _remember(self, msg: IncomingMessage) -> None:
        self._recorded[_who(msg)] = True
        if self.shared is not None:
            await self.shared.remember(_who(msg))

    def shown(self, msg: IncomingMessage) -> bool:
        """This process showed ``msg``'s user the notice (kept in memory: a user with no row has nowhere else)."""
        return self._recorded.get(_who(msg)) is not None

    def first_offline(self, msg: IncomingMessage) -> bool:
        """Storage is down: whether to show the notice now (once per user, never to one who has seen it)."""
        return not self.on_its_way(msg) and self._offline.first_time(_who(msg))

    def dropped(self, msg: IncomingMessage) -> None:
        """The replies carrying the notice were replaced (storage failed mid-message): it was not shown."""
        self._due.pop(_who(msg), None)

    def _carries(self, msg: IncomingMessage, replies: Sequence[Reply]) -> bool:
        """Whether ``replies`` include the notice waiting for ``msg``'s user (another message's delivery, e.g. a
        public answer in a group that finished before the private notice, says nothing about it)."""
        due = self._due.get(_who(msg))
        return due is not None and any(r is due[1] for r in replies)

    def undelivered(self, msg: IncomingMessage, replies: Sequence[Reply], exc: BaseException) -> None:
        """Delivery failed: shown again with the user's next message. Cut off by a stop (cancelled, ShuttingDown):
        left on its way, so the messages still handled during the stop do not compose it again (the replayed
        update shows it after the restart)."""
        if self._carries(msg, replies) and not isinstance(exc, (asyncio.CancelledError, ShuttingDown)):
            self.dropped(msg)

    async def sent(self, msg: IncomingMessage, reply: Reply) -> None:
        """``reply`` (one of the replies to ``msg``) reached the platform: recorded at once if it is the notice, so
        a stop before the rest of the replies went out does not show it twice."""
        await self.delivered(msg, (reply,))

    async def delivered(self, msg: IncomingMessage, replies: Sequence[Reply]) -> None:
        """The delivery of ``replies`` to ``msg`` finished (sent, or given up on: a private message Telegram
        refuses is not retried with every message): a notice among them is now shown for good."""
        if not self._carries(msg, replies):
            return
        who = _who(msg)
        user = self._due[who][0]
        try:
            await self._remember(msg)
            if user.stored:  # a user with no row (nothing stored about them) only in memory (and in shared)
                await self._store.set_notice_shown(user)
        except STORE_ERRORS as exc:  # shown; not recorded: it may be shown once more later
            log.warning("could not record the first-message notice as shown: %s", exc or type(exc).__name__)
        finally:
            # still "on its way" until the row says shown: a message handled meanwhile must not repeat it
            self._due.pop(who, None)

    async def watch(self, msg: IncomingMessage, replies: Sequence[Reply], delivery: Awaitable[None]) -> None:
        """Await the delivery of ``replies`` to ``msg``, then say how it ended (``delivered``/``undelivered``)."""
        try:
            await delivery
        except BaseException as exc:
            self.undelivered(msg, replies, exc)
            raise
        await self.delivered(msg, replies)
