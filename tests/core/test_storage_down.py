"""The engine when storage is full, locked or gone (issue 14 item 1), and the unanswered log per asker (item 6).

Storage faults are real SQLite ones on a real file: ``PRAGMA max_page_count`` at the current size makes SQLite
answer every growing write with SQLITE_FULL ("database or disk is full"), exactly as a full disk does; a second
connection holding ``BEGIN IMMEDIATE`` is a write lock held by someone else.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import agree, dm, group, real_runtime

from bot.bootstrap import Runtime
from bot.core import resilience
from bot.core.replies import SORRY
from bot.core.resilience import UNAVAILABLE
from bot.storage.sqlite import SQLiteStore

RED_FLAG = "I can't feel my groin and can't pee"
QUESTION = "why does my lower back hurt after running?"
UNANSWERED = "my friend Sam Patel says pickle juice cures cramp, true? text @sampatel on 07700 900123"


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with real_runtime(tmp_path / "runbot.db") as runtime:
        yield runtime


async def _fill_up(store: SQLiteStore) -> None:
    """Cap the file at its current size and fill the free room in the tables a message writes to: from then on
    every write of the bot needs a new page and fails with SQLITE_FULL, as on a full disk."""
    async with store.db.execute("PRAGMA page_count") as cur:
        pages = (await cur.fetchone())[0]  # type: ignore[index]
    await store.db.execute(f"PRAGMA max_page_count = {pages}")
    owner = await store.get_or_create_user("filler", "first")
    fillers = (
        "INSERT INTO users (platform, platform_user_id, created_at) VALUES ('filler', ? || ?, 'x')",
        f"INSERT INTO escalations (user_id, level, category, created_at) VALUES ({owner.id}, ?, ?, 'x')",
    )
    for sql in fillers:
        with pytest.raises(sqlite3.OperationalError, match="full"):  # really full for this connection
            for i in range(100_000):
                await store.db.execute(sql, ("x" * (10 + i % 7), i))


async def _free(store: SQLiteStore) -> None:
    await store.db.execute("PRAGMA max_page_count = 1073741823")


async def _escalations(store: SQLiteStore, who: str, *, anonymous: bool = True) -> int:
    """Safety-log rows of ``who``'s red flags: linked to them (they consented), and with ``anonymous`` the unlinked
    rows (no consent: level, category and time only, issue 16) once the same bookkeeping created their user row."""
    async with store.db.execute(
        "SELECT COUNT(*) FROM escalations e LEFT JOIN users u ON u.id = e.user_id WHERE u.platform_user_id = ?"
        " OR (? AND e.user_id IS NULL AND EXISTS (SELECT 1 FROM users WHERE platform_user_id = ?))",
        (who, int(anonymous), who),
    ) as cur:
        return int((await cur.fetchone())[0])  # type: ignore[index]


@pytest.mark.slow
async def test_full_disk_red_flag_faq_and_stored_features(rt: Runtime) -> None:
    engine = rt.engine
    await _fill_up(rt.store)
    started = time.monotonic()
    out = await engine.handle(dm(RED_FLAG, user="new-runner"))
    assert time.monotonic() - started < 1.0
    assert out.kind == "escalation" and out.escalation is not None and out.escalation.level == "emergency"
    assert "999" in out.replies[0].text and SORRY not in [r.text for r in out.replies]

    answer = await engine.handle(dm(QUESTION, user="another"))
    assert answer.kind == "answer" and answer.faq_id == "back-pain-causes"
    assert any("not medical advice" in r.text for r in answer.replies)  # the first-time notice, from memory
    again = await engine.handle(dm(QUESTION, user="another"))
    assert len(again.replies) == 1  # the notice once, not with every message
    # nothing is stored about "another" (no row: issue 16), and reading still works on a full disk
    mydata = await engine.handle(dm("/mydata", user="another"))
    assert "I don't store anything about you" in mydata.replies[-1].text
    refused = await engine.handle(dm("/followups off", user="another"))  # a preference must be written: it can't
    assert [r.text for r in refused.replies] == [UNAVAILABLE]
    asked = await engine.handle(dm("/triage", user="another"))  # consent first: nothing written yet
    assert asked.kind == "consent"
    yes = asked.replies[-1].choices[0]
    pressed = await engine.handle(dm(yes.label, user="another", choice=yes.payload))
    assert [r.text for r in pressed.replies] == [UNAVAILABLE]  # the "yes" cannot be kept: said, not pretended
    helped = await engine.handle(dm("/help", user="another"))
    assert helped.kind == "command" and UNAVAILABLE not in helped.replies[-1].text
    fallback = await engine.handle(dm("does a xylophone quantum zebra help", user="another"))
    assert fallback.kind == "fallback"

    await _free(rt.store)  # space again: the escalation's bookkeeping (retried in the background) lands
    for _ in range(100):
        if await _count(rt.store, "SELECT COUNT(*) FROM escalations WHERE user_id IS NULL"):
            break
        await asyncio.sleep(0.1)
    assert await _count(rt.store, "SELECT COUNT(*) FROM escalations WHERE user_id IS NULL") == 1  # level only
    assert await _count(rt.store, "SELECT COUNT(*) FROM users WHERE platform = 'test'") == 0  # no row for either
    await rt.store.flush()
    assert [r["count"] for r in await rt.store.unanswered()] == [1]  # the question, linked to nobody


async def _count(store: SQLiteStore, sql: str) -> int:
    async with store.db.execute(sql) as cur:
        return int((await cur.fetchone())[0])  # type: ignore[index]


@pytest.mark.slow
async def test_locked_database_red_flag_and_safety_answer_do_not_wait(rt: Runtime, tmp_path: Path) -> None:
    engine = rt.engine
    await agree(rt, "locked-out")  # agreed earlier: the red flag is logged linked to them once the lock is gone
    asked = await engine.handle(dm("my legs feel a bit weak since this morning", user="checker"))
    holder = sqlite3.connect(tmp_path / "runbot.db", timeout=5, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        out = await engine.handle(dm(RED_FLAG, user="locked-out"))
        assert time.monotonic() - started < 1.0
        assert out.kind == "escalation" and "999" in out.replies[0].text
        if asked.kind == "safety-check":  # a "yes" to a safety question escalates at once too
            started = time.monotonic()
            yes = await engine.handle(dm("yes", user="checker"))
            assert time.monotonic() - started < 1.0 and yes.kind == "escalation"
        started = time.monotonic()
        answer = await engine.handle(dm(QUESTION, user="locked-out-2"))
        assert time.monotonic() - started < resilience.STORAGE_BUDGET + 1.0
        assert answer.kind == "answer"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for _ in range(150):
        if await _escalations(rt.store, "locked-out", anonymous=False):
            break
        await asyncio.sleep(0.1)
    assert await _escalations(rt.store, "locked-out", anonymous=False) == 1


@pytest.mark.slow
async def test_repeat_escalations_are_limited_in_memory_while_storage_is_down(rt: Runtime) -> None:
    await _fill_up(rt.store)
    first = await rt.engine.handle(dm(RED_FLAG, user="repeat"))
    second = await rt.engine.handle(dm(RED_FLAG, user="repeat"))
    assert first.kind == second.kind == "escalation"
    assert len(second.replies) == 1 and len(second.replies[0].text) < len(first.replies[0].text)  # a reminder


@pytest.mark.slow
async def test_group_red_flag_with_storage_down_keeps_details_private(rt: Runtime) -> None:
    await _fill_up(rt.store)
    out = await rt.engine.handle(group(RED_FLAG, user="grouped"))
    public = [r for r in out.replies if not r.private]
    private = [r for r in out.replies if r.private]
    assert out.kind == "escalation" and public and private
    assert "groin" not in public[0].text.lower()


async def test_bookkeeping_failure_is_logged_never_shown(rt: Runtime, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(resilience, "ATTEMPTS", 2)
    monkeypatch.setattr(resilience, "RETRY_PAUSE", 0.01)
    await _fill_up(rt.store)
    out = await rt.engine.handle(dm(RED_FLAG, user="dropped"))
    assert out.kind == "escalation" and SORRY not in [r.text for r in out.replies]
    await rt.engine.bookkeeper.drain(5)
    assert rt.engine.bookkeeper.failed == 1
    assert any("storage unavailable after 2 attempts" in r.getMessage() for r in caplog.records)


async def test_unanswered_questions_are_masked_listed_by_mydata_and_forgotten(rt: Runtime) -> None:
    engine, store = rt.engine, rt.store
    await agree(rt, "asker", "bystander")  # linked to the asker only with consent (issue 16)
    await engine.handle(dm(UNANSWERED, user="asker"))
    await engine.handle(dm(UNANSWERED, user="bystander"))
    await store.flush()
    [row] = await store.unanswered()
    assert row["count"] == 2
    assert row["text"] == "my friend <name> <name> says pickle juice cures cramp true text <handle> on <number>"
    await engine.handle(dm("does a xylophone quantum zebra help", user="asker"))  # still buffered

    mydata = await engine.handle(dm("/mydata", user="asker"))
    text = mydata.replies[-1].text
    assert "questions I couldn't answer, kept for the moderators: 2" in text
    assert "pickle juice" in text and "xylophone" in text

    await engine.handle(dm("/forget confirm", user="asker"))
    await store.flush()
    [row] = await store.unanswered()  # the bystander's question stays, the asker's count is gone
    assert row["count"] == 1
    assert not any("xylophone" in r["text"] for r in await store.unanswered())
    user = await store.get_or_create_user("test", "bystander")
    assert [q["count"] for q in (await store.export_user(user))["unanswered"]] == [1]


async def test_migration_keeps_old_unanswered_rows_unlinked(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    from bot.storage.common import migrations

    for version, sql in migrations("sqlite"):
        if version < 3:
            conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.execute("INSERT INTO unanswered VALUES ('an old question', 3, '2026-01-01T00:00:00.000000Z',"
                 " '2026-01-02T00:00:00.000000Z')")
    conn.commit()
    conn.close()
    async with SQLiteStore(db) as store:
        assert await store.schema_version() >= 3
        rows = await store.unanswered()
        assert [(r["text"], r["count"]) for r in rows] == [("an old question", 3)]
        async with store.db.execute("SELECT user_id FROM unanswered") as cur:
            assert [r[0] for r in await cur.fetchall()] == [0]
