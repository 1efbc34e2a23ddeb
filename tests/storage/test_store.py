"""The SQLite store on a real SQLite file: migrations, WAL, buffered counters, retention, follow-up rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

import bot.storage.sqlite.base as sqlite_base
from bot.core.ports import ManualClock
from bot.core.store import StoredTriage
from bot.storage.buffers import FLUSH_EVERY
from bot.storage.common import migrations, to_db
from bot.storage.sqlite import SQLiteStore


def shipped_versions() -> list[int]:
    folder = resources.files("bot.storage") / "migrations" / "sqlite"
    return sorted(int(p.name[:4]) for p in folder.iterdir() if p.name.endswith(".sql") and p.name[:4].isdigit())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "runbot.db", clock=clock)
    async with s:
        yield s


async def scalar(store: SQLiteStore, sql: str, params: tuple[object, ...] = ()) -> object:
    async with store.db.execute(sql, params) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def test_migrations_set_user_version_and_wal(store: SQLiteStore) -> None:
    versions = shipped_versions()
    assert versions and versions == sorted(set(versions))
    assert await store.schema_version() == versions[-1]
    assert await scalar(store, "PRAGMA user_version") == versions[-1]
    assert await scalar(store, "PRAGMA journal_mode") == "wal"
    assert await scalar(store, "PRAGMA foreign_keys") == 1
    tables = {
        r[0]
        for r in await (await store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")).fetchall()
    }
    assert {"users", "triage_state", "escalations", "unanswered", "followups", "stats"} <= tables


async def test_memory_database_works_without_wal(clock: ManualClock) -> None:
    async with SQLiteStore(":memory:", clock=clock) as s:
        assert await s.schema_version() == shipped_versions()[-1]
        user = await s.get_or_create_user("test", "m")
        assert (await s.find_user("test", "m")) == user


async def test_reopening_keeps_data_and_does_not_rerun_migrations(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db, clock=clock) as s:
        user = await s.get_or_create_user("test", "keep")
        await s.add_followup(user, "dm-keep", "self-care-mild", clock.now() + timedelta(days=3))
    for _ in range(2):  # a re-run of 0001 would fail on CREATE TABLE, or wipe nothing silently: check both
        async with SQLiteStore(db, clock=clock) as s:
            assert await s.schema_version() == shipped_versions()[-1]
            again = await s.find_user("test", "keep")
            assert again is not None and again.id == user.id
            assert [f.topic for f in await s.user_followups(again)] == ["self-care-mild"]


async def test_a_new_migration_is_applied_once(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db, clock=clock) as s:
        base = await s.schema_version()
    shipped = migrations("sqlite")
    extra = (base + 1, "CREATE TABLE marker (n INTEGER);\nINSERT INTO marker VALUES (1);")
    monkeypatch.setattr(sqlite_base, "migrations", lambda dialect: [*shipped, extra])
    for _ in range(3):
        async with SQLiteStore(db, clock=clock) as s:
            assert await s.schema_version() == base + 1
            assert await scalar(s, "SELECT COUNT(*) FROM marker") == 1


async def test_failed_migration_rolls_back_and_keeps_the_version(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db, clock=clock) as s:
        base = await s.schema_version()
    shipped = migrations("sqlite")
    broken = (base + 1, "CREATE TABLE half (n INTEGER);\nTHIS IS NOT SQL;")
    monkeypatch.setattr(sqlite_base, "migrations", lambda dialect: [*shipped, broken])
    s = SQLiteStore(db, clock=clock)
    with pytest.raises(Exception, match="syntax error"):
        await s.open()
    await s.close()
    monkeypatch.setattr(sqlite_base, "migrations", lambda dialect: shipped)
    async with SQLiteStore(db, clock=clock) as s:
        assert await s.schema_version() == base
        assert await scalar(s, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'") == 0


async def test_unanswered_and_counters_are_buffered_then_flushed(store: SQLiteStore) -> None:
    for _ in range(3):
        await store.record_unanswered("what socks for marathon")
    await store.increment("messages")
    await store.increment("messages", 4)
    # buffered: nothing written yet
    assert await scalar(store, "SELECT COUNT(*) FROM unanswered") == 0
    assert await scalar(store, "SELECT COUNT(*) FROM stats") == 0
    await store.flush()
    assert await scalar(store, "SELECT count FROM unanswered WHERE normalized = ?", ("what socks for marathon",)) == 3
    assert await scalar(store, "SELECT SUM(count) FROM stats WHERE kind = 'messages'") == 5
    await store.record_unanswered("what socks for marathon")
    await store.increment("messages")
    await store.flush()  # upserts add to the stored totals
    assert await scalar(store, "SELECT count FROM unanswered") == 4
    assert await store.stats() == {"messages": 6}
    rows = await store.unanswered()
    assert [(r["text"], r["count"]) for r in rows] == [("what socks for marathon", 4)]
    await store.record_unanswered("")
    await store.flush()
    assert await scalar(store, "SELECT COUNT(*) FROM unanswered") == 1


async def test_buffer_is_written_when_it_fills_up(store: SQLiteStore) -> None:
    for i in range(FLUSH_EVERY - 1):
        await store.record_unanswered(f"question number {i}")
    assert await scalar(store, "SELECT COUNT(*) FROM unanswered") == 0
    await store.record_unanswered("the last straw")  # starts a background write: the caller never waits for it
    await store.settled()
    assert await scalar(store, "SELECT COUNT(*) FROM unanswered") == FLUSH_EVERY


async def test_close_flushes_the_buffer(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "runbot.db"
    async with SQLiteStore(db, clock=clock) as s:
        await s.record_unanswered("do compression shorts help")
        await s.increment("fallback", 2)
    async with SQLiteStore(db, clock=clock) as s:
        assert await scalar(s, "SELECT count FROM unanswered WHERE normalized = 'do compression shorts help'") == 1
        assert await s.stats() == {"fallback": 2}


async def test_stats_are_daily_and_filtered_by_since(store: SQLiteStore, clock: ManualClock) -> None:
    await store.increment("answer")
    clock.advance(days=2)
    await store.increment("answer", 3)
    assert await store.stats() == {"answer": 4}
    assert await store.stats(since=clock.now() - timedelta(days=1)) == {"answer": 3}
    assert await scalar(store, "SELECT COUNT(*) FROM stats") == 2


async def test_purge_removes_only_old_unanswered_and_escalations(store: SQLiteStore, clock: ManualClock) -> None:
    user = await store.get_or_create_user("test", "old-timer")
    await store.record_unanswered("an old question")
    await store.log_escalation(user, "urgent", "night-pain")
    await store.save_triage(user, StoredTriage("back-pain-v1", "duration", (("bladder-saddle", 1),), "dm"))
    followup = await store.add_followup(user, "dm", "self-care-mild", clock.now() + timedelta(days=3))
    await store.increment("messages")
    clock.advance(days=200)
    await store.record_unanswered("a new question")
    await store.log_escalation(user, "emergency", "cauda-equina")
    removed = await store.purge_older_than(180)
    assert removed == 2
    assert [r["text"] for r in await store.unanswered()] == ["a new question"]
    assert (await store.export_user(user))["escalations"] == [
        {"level": "emergency", "category": "cauda-equina", "created_at": to_db(clock.now())}
    ]
    # everything else stays: the user, the check in progress, the follow-up, the counters
    assert await store.find_user("test", "old-timer") is not None
    assert await store.get_triage(user) is not None
    assert (await store.get_followup(followup)) is not None
    assert await store.stats() == {"messages": 1}
    assert await store.purge_older_than(180) == 0


async def test_user_is_created_once_and_cached(store: SQLiteStore) -> None:
    a = await store.get_or_create_user("telegram", "42")
    b = await store.get_or_create_user("telegram", "42")
    c = await store.get_or_create_user("discord", "42")
    assert a == b and a.id != c.id
    assert (a.notice_shown, a.followups_enabled) == (False, True)
    await store.set_notice_shown(a)
    await store.set_followups_enabled(a, False)
    fresh = await store.get_or_create_user("telegram", "42")
    assert (fresh.notice_shown, fresh.followups_enabled) == (True, False)
    assert await scalar(store, "SELECT COUNT(*) FROM users") == 2


async def test_add_followup_replaces_the_active_series(store: SQLiteStore, clock: ManualClock) -> None:
    user = await store.get_or_create_user("test", "r")
    first = await store.add_followup(user, "dm", "self-care-mild", clock.now() + timedelta(days=3))
    second = await store.add_followup(user, "dm", "self-care-modify", clock.now() + timedelta(days=3))
    rows = await store.user_followups(user)
    assert [(f.id, f.state) for f in rows] == [(first, "cancelled"), (second, "pending")]
    assert [f.id for f in await store.list_followups()] == [second]
    assert await store.cancel_followups(user) == 1
    assert await store.list_followups() == []
    assert await store.next_due() is None


async def test_times_are_utc_text_and_naive_times_are_refused(store: SQLiteStore, clock: ManualClock) -> None:
    user = await store.get_or_create_user("test", "r")
    due = clock.now() + timedelta(days=3, microseconds=123)
    fid = await store.add_followup(user, "dm", "t", due)
    assert await scalar(store, "SELECT due_at FROM followups WHERE id = ?", (fid,)) == to_db(due)
    assert str(await scalar(store, "SELECT due_at FROM followups")).endswith("Z")
    f = await store.get_followup(fid)
    assert f is not None and f.due_at == due
    with pytest.raises(TypeError, match="naive"):  # a bug, not a storage outage
        await store.add_followup(user, "dm", "t", due.replace(tzinfo=None))


async def test_update_followup_refuses_unknown_columns(store: SQLiteStore, clock: ManualClock) -> None:
    user = await store.get_or_create_user("test", "r")
    fid = await store.add_followup(user, "dm", "t", clock.now())
    with pytest.raises(TypeError):
        await store.update_followup(fid, user_id=999)
    with pytest.raises(TypeError):
        await store.update_followup(fid)
    await store.update_followup(fid, state="awaiting", checkins=1)
    f = await store.get_followup(fid)
    assert f is not None and (f.state, f.checkins) == ("awaiting", 1)


async def test_forget_cascades_and_leaves_other_users(store: SQLiteStore, clock: ManualClock) -> None:
    gone = await store.get_or_create_user("test", "gone")
    stays = await store.get_or_create_user("test", "stays")
    for u in (gone, stays):
        await store.log_escalation(u, "urgent", "night-pain")
        await store.save_triage(u, StoredTriage("f", "s", (), "dm"))
        await store.add_followup(u, "dm", "t", clock.now())
    await store.forget_user(gone)
    for table in ("triage_state", "escalations", "followups"):
        assert await scalar(store, f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (gone.id,)) == 0
        assert await scalar(store, f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (stays.id,)) == 1
    assert await store.find_user("test", "gone") is None
    again = await store.get_or_create_user("test", "gone")  # a later message starts from scratch
    assert await store.user_followups(again) == []
    assert await store.get_triage(again) is None


async def test_the_user_cache_is_bounded_and_evicted_users_still_load(store: SQLiteStore) -> None:
    from bot.core.lru import LruCache

    store._user_cache = LruCache(3)  # a small bound instead of USER_CACHE_LIMIT, the same code path
    first = await store.get_or_create_user("telegram", "u0")
    for i in range(1, 6):
        await store.get_or_create_user("telegram", f"u{i}")
    assert len(store._user_cache) == 3
    assert ("telegram", "u0") not in store._user_cache
    again = await store.get_or_create_user("telegram", "u0")  # read back from the database, not created twice
    assert again.id == first.id and not again.new
    assert ("telegram", "u0") in store._user_cache and len(store._user_cache) == 3


def test_lru_keeps_the_recently_used() -> None:
    from bot.core.lru import LruCache

    cache: LruCache[str, int] = LruCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # "a" is now the most recent
    cache["c"] = 3
    assert list(cache) == ["a", "c"]
    with pytest.raises(ValueError):
        LruCache(0)
