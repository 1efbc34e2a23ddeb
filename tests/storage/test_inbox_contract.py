"""The durable inbox contract (bot.core.store.Inbox) on both stores, with per-chat claims for several workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.storage import make_chat_queue, make_inbox

Opener = Callable[[], Awaitable[Any]]
LEASE = timedelta(minutes=1)


async def _inbox(open_store: Opener, platform: str = "telegram") -> Any:
    inbox = make_inbox(await open_store(), platform)
    assert inbox is not None
    await inbox.open()
    return inbox


async def test_updates_are_stored_once_replayed_until_done_and_their_text_goes(open_store: Opener) -> None:
    inbox = await _inbox(open_store)
    try:
        assert await inbox.add([(1, "10", {"text": "one"}), (2, "20", {"text": "two"}), (3, "10", {"t": 3})]) == {
            1, 2, 3}
        assert await inbox.add([(2, "20", {"text": "two"}), (4, "30", {"text": "four"})]) == {4}
        inbox.done(2)
        await inbox.flush()
        assert [uid for uid, _ in await inbox.pending()] == [1, 3, 4]
        assert dict(await inbox.pending())[3] == {"t": 3}
        assert await inbox.last_id() == 4
        assert (await inbox.count("pending"), await inbox.count("done")) == (3, 1)
        assert await inbox.add([(2, "20", {"text": "two"})]) == set()  # answered before: never handled twice
    finally:
        await inbox.close()
    other = await _inbox(open_store, "discord")  # one table, each platform its own ids
    try:
        assert await other.pending() == [] and await other.last_id() is None
    finally:
        await other.close()


async def _queue(open_store: Opener, lease: timedelta = LEASE) -> Any:
    inbox = await _inbox(open_store)
    queue = make_chat_queue(inbox)
    queue.lease = lease
    await queue.open()
    return queue


async def test_processes_hold_whole_chats_in_order_and_never_one_another_s(open_store: Opener) -> None:
    a, b = await _queue(open_store), await _queue(open_store)
    try:
        await a.inbox.add([(i, f"chat{i % 3}", {"n": i}) for i in range(1, 10)])
        held_a = await a.claim(2)
        held_b = await b.claim(2)
        assert held_a == ["chat1", "chat2"] and held_b == ["chat0"]  # oldest update first; nobody's chat twice
        assert await b.claim(5, busy=held_b) == []  # the others' chats never; its own busy ones left out
        assert await b.claim(5) == ["chat0"]  # its own chat with updates pending, taken back (not busy any more)
        assert [uid for uid, _ in await a.updates("chat1")] == [1, 4, 7]  # in update order
        for uid, payload in await a.updates("chat1"):
            assert payload == {"n": uid}
            a.inbox.done(uid)
        await a.inbox.flush()
        await a.release("chat1")
        await a.inbox.add([(20, "chat1", {"n": 20})])
        assert await b.claim(5, busy=["chat0"]) == ["chat1"]  # a released chat goes to whoever asks
        assert [uid for uid, _ in await b.updates("chat1")] == [20]
        assert await a.renew(["chat1", "chat2"]) == {"chat2"}  # a no longer holds chat1
        await a.release_all()
        assert await b.claim(5, busy=["chat0", "chat1"]) == ["chat2"]
    finally:
        for q in (a, b):
            await q.release_all()
            await q.inbox.close()


async def test_a_chat_held_by_a_process_that_stopped_passes_on_after_its_lease(open_store: Opener) -> None:
    a = await _queue(open_store, lease=timedelta(seconds=0.2))
    b = await _queue(open_store)
    try:
        await a.inbox.add([(1, "chat", {"n": 1})])
        assert await a.claim(5) == ["chat"] and await b.claim(5) == []
        await asyncio.sleep(0.3)
        assert await b.claim(5) == ["chat"]
    finally:
        await a.inbox.close()
        await b.inbox.close()


async def test_one_poller_holds_the_named_lease_until_it_lets_go(open_store: Opener) -> None:
    a, b = await _queue(open_store), await _queue(open_store)
    try:
        assert await a.hold("poller:telegram") and await a.hold("poller:telegram")  # kept while renewed
        assert not await b.hold("poller:telegram")
        await a.let_go("poller:telegram")
        assert await b.hold("poller:telegram")
    finally:
        await a.inbox.close()
        await b.inbox.close()
