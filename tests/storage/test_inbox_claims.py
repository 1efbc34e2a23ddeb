"""The durable inbox and the follow-up claims on real SQLite files (two connections = two processes)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import build_shipped

from bot.core.store import new_owner
from bot.storage.sqlite import SQLiteStore
from bot.storage.sqlite.inbox import SQLiteInbox as Inbox

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


# ---------------------------------------------------------------------------------------------- inbox
async def test_inbox_keeps_pending_updates_across_a_reopen_and_forgets_text_once_done(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db):  # migrations
        pass
    inbox = Inbox(db, "telegram")
    await inbox.open()
    new = await inbox.add([(1, "10", {"text": "one"}), (2, "20", {"text": "two"}), (3, "10", {"text": "three"})])
    assert new == {1, 2, 3}
    assert await inbox.add([(2, "20", {"text": "two"}), (4, "30", {"text": "four"})]) == {4}  # seen: not again
    inbox.done(2)
    await inbox.close()  # flushes the done marks

    again = Inbox(db, "telegram")
    await again.open()
    try:
        assert [uid for uid, _ in await again.pending()] == [1, 3, 4]
        assert dict(await again.pending())[3] == {"text": "three"}
        assert await again.last_id() == 4
        assert await again.add([(2, "20", {"text": "two"})]) == set()  # answered before: never handled twice
        async with again.db.execute("SELECT payload FROM inbox WHERE update_id = 2") as cur:
            assert (await cur.fetchone())[0] == ""  # type: ignore[index]
    finally:
        await again.close()
    other = Inbox(db, "discord")  # one table, each platform its own ids
    await other.open()
    try:
        assert await other.pending() == [] and await other.last_id() is None
    finally:
        await other.close()


async def test_inbox_done_marks_are_written_within_moments(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    inbox = Inbox(db, "telegram")
    await inbox.open()
    try:
        await inbox.add([(7, "1", {"text": "x"})])
        inbox.done(7)
        for _ in range(100):
            if await inbox.count("done") == 1:
                break
            await asyncio.sleep(0.01)
        assert await inbox.count("done") == 1 and await inbox.count("pending") == 0
    finally:
        await inbox.close()


# ---------------------------------------------------------------------------------------------- claims
@pytest.fixture
async def two_stores(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db) as first, SQLiteStore(db) as second:
        yield first, second


async def _seed(store: SQLiteStore, n: int, platform: str = "telegram") -> list[int]:
    ids = []
    for i in range(n):
        user = await store.get_or_create_user(platform, str(1000 + i))
        ids.append(await store.add_followup(user, str(1000 + i), "self-care-mild", NOW - timedelta(minutes=n - i)))
    return ids


async def test_two_connections_claiming_at_once_never_get_the_same_row(
    two_stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = two_stores
    ids = await _seed(first, 60)

    async def drain(store: SQLiteStore, owner: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_due(owner, NOW, LEASE, platforms={"telegram"}, limit=7):
            got += [c.followup.id for c in batch]
            await asyncio.sleep(0)
        return got

    a, b = await asyncio.gather(drain(first, "host:1:a"), drain(second, "host:2:b"))
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)


async def test_a_claimed_row_is_taken_over_only_after_its_lease(two_stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    first, second = two_stores
    (fid,) = await _seed(first, 1)
    (claim,) = await first.claim_due("elsewhere:1:a", NOW, LEASE, platforms={"telegram"})
    assert claim.send_key == f"fu:{fid}:1"
    assert await second.claim_due("elsewhere:2:b", NOW + LEASE / 2, LEASE, platforms={"telegram"}) == []
    assert await second.next_claimable({"telegram"}) == NOW + LEASE  # sleep until the lease ends, no busy loop
    (taken,) = await second.claim_due(
        "elsewhere:2:b", NOW + LEASE + timedelta(seconds=1), LEASE, platforms={"telegram"}
    )
    assert taken.send_key == claim.send_key  # the same send: one idempotency key
    # the first owner lost the row: it can neither complete nor release it
    assert not await first.complete_claim(claim, "elsewhere:1:a", NOW)
    assert not await first.release_claim(claim, "elsewhere:1:a", NOW, state="pending")
    assert await second.complete_claim(taken, "elsewhere:2:b", NOW)
    assert await first.already_sent(claim.send_key)
    row = await first.get_followup(fid)
    assert row is not None and (row.state, row.checkins) == ("awaiting", 1)


@pytest.mark.slow
async def test_a_dead_owner_on_this_machine_does_not_hold_its_rows(two_stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    first, second = two_stores
    await _seed(first, 3)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()  # its pid is now free: a process that died holding a lease
    dead = f"{socket.gethostname()}:{proc.pid}:gone"
    alive = f"{socket.gethostname()}:{os.getppid()}:alive"  # our parent is running
    (kept,) = await first.claim_due(alive, NOW, LEASE, platforms={"telegram"}, limit=1)
    lost = await first.claim_due(dead, NOW, LEASE, platforms={"telegram"}, limit=5)
    assert len(lost) == 2
    retaken = await second.claim_due(new_owner(), NOW, LEASE, platforms={"telegram"})
    # at once, not after the lease: the dead process's two rows; the live one's row stays with it
    assert {c.followup.id for c in retaken} == {c.followup.id for c in lost}
    assert kept.followup.id not in {c.followup.id for c in retaken}


async def test_only_platforms_running_here_are_claimed(two_stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    first, _ = two_stores
    await _seed(first, 2, platform="discord")
    assert await first.claim_due("h:1:x", NOW, LEASE, platforms={"telegram"}) == []
    assert await first.next_claimable({"telegram"}) is None
    assert await first.claim_due("h:1:x", NOW, LEASE, platforms=set()) == []


async def test_housekeeping_forgets_delivered_keys_after_a_month(tmp_path: Path) -> None:
    from support import KNOWLEDGE

    from bot.app import App
    from bot.config import KnowledgeSettings, Settings
    from bot.core.ports import ManualClock

    clock = ManualClock(NOW)
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db, clock=clock) as store:
        await _seed(store, 2)
        old, fresh = await store.claim_due("h:1:x", NOW, LEASE, platforms={"telegram"})
        assert await store.complete_claim(old, "h:1:x", NOW - timedelta(days=31))
        assert await store.complete_claim(fresh, "h:1:x", NOW - timedelta(days=29))
    settings = Settings(knowledge=KnowledgeSettings(path=str(KNOWLEDGE), watch=False))
    rt = build_shipped(settings, clock=clock, db_path=db)
    app = App(settings, runtime=rt)
    app.housekeeping_seconds = 0.02
    run = asyncio.create_task(app.run(adapters=[]))
    try:
        for _ in range(200):
            if rt.store._db is not None and not await rt.store.already_sent(old.send_key):
                break
            await asyncio.sleep(0.02)
        assert not await rt.store.already_sent(old.send_key)
        assert await rt.store.already_sent(fresh.send_key)
    finally:
        app.request_stop()
        assert await asyncio.wait_for(run, 10) == 0


@pytest.mark.slow
async def test_a_locked_database_is_one_warning_for_the_scheduler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from bot.config import Settings
    from bot.core.ports import ManualClock

    db = tmp_path / "runbot.db"
    rt = build_shipped(Settings(), clock=ManualClock(NOW), db_path=db)
    async with rt:
        await _seed(rt.store, 1)

        class Quiet:
            platform = "telegram"

            async def start(self) -> None: ...
            async def stop(self) -> None: ...
            async def send(self, target: object, replies: object) -> None: ...

        rt.add_adapter(Quiet())  # type: ignore[arg-type]
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            task = asyncio.create_task(rt.scheduler.run())
            for _ in range(300):
                if rt.scheduler.sleeps:
                    break
                await asyncio.sleep(0.02)
            rt.scheduler.stop()
            await asyncio.wait_for(task, 5)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert rt.scheduler.sleeps[0] == 60.0
    warnings = [r for r in caplog.records if "follow-ups: the database is unavailable" in r.getMessage()]
    assert warnings and all(r.exc_info is None for r in warnings)
