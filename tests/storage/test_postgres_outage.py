"""Safety first on PostgreSQL too: with the database gone (every connection cut, new ones refused) a red flag is
answered at once and FAQ questions still are; what needs storing says so; the safety log is written once the
database is back. Flood control and the repeat guard are shared through the database, and fall back to memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pgtest
import pytest
from support import agree, build_shipped, dm

from bot.bootstrap import Runtime
from bot.config import DatabaseSettings, Settings
from bot.core import resilience
from bot.core.ports import ManualClock
from bot.core.resilience import UNAVAILABLE
from bot.storage.postgres.flood import PgFloodControl

RED_FLAG = "I can't feel my groin and can't pee"
QUESTION = "why does my lower back hurt after running?"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pgtest.fresh_database() as url:
        yield url


@pytest.fixture
async def rt(pg_url: str) -> AsyncIterator[Runtime]:
    await pgtest.empty_tables(pg_url)
    settings = Settings(database=DatabaseSettings(url=pg_url))
    async with build_shipped(settings, clock=ManualClock()) as runtime:
        yield runtime
    await _allow(pg_url, True)


async def _allow(url: str, allowed: bool) -> None:
    """Let connections to the test database in again, or cut every one and refuse new ones (the database is gone)."""
    import asyncpg

    name = urlsplit(url).path.lstrip("/")
    con = await asyncpg.connect(pgtest.ADMIN_URL)
    try:
        await con.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await con.close()


async def test_database_gone_red_flag_and_questions_still_answered(rt: Runtime, pg_url: str) -> None:
    engine = rt.engine
    assert isinstance(engine.flood, PgFloodControl)
    await agree(rt, "alice")
    warm = await engine.handle(dm(QUESTION, user="bob"))
    assert warm.kind == "answer"
    await _allow(pg_url, False)
    try:
        started = time.monotonic()
        out = await engine.handle(dm(RED_FLAG, user="alice"))
        assert time.monotonic() - started < 1.0, "the emergency reply waited for the database"
        assert out.kind == "escalation" and "999" in out.replies[0].text
        started = time.monotonic()
        answer = await engine.handle(dm(QUESTION, user="carol"))
        assert time.monotonic() - started < resilience.STORAGE_BUDGET + 1.0
        assert answer.kind == "answer"
        refused = await engine.handle(dm("/followups off", user="carol"))
        assert [r.text for r in refused.replies][-1] == UNAVAILABLE
    finally:
        await _allow(pg_url, True)
    for _ in range(100):  # the escalation's bookkeeping is retried in the background until it lands
        if await _linked_escalations(rt, "alice"):
            break
        await asyncio.sleep(0.1)
    assert await _linked_escalations(rt, "alice") == 1


async def _linked_escalations(rt: Runtime, who: str) -> int:
    user = await rt.store.find_user("test", who)
    assert user is not None
    return len((await rt.store.export_user(user))["escalations"])


async def test_flood_control_and_the_repeat_guard_are_shared_by_processes(pg_url: str) -> None:
    await pgtest.empty_tables(pg_url)
    settings = Settings(database=DatabaseSettings(url=pg_url))
    async with build_shipped(settings) as one, build_shipped(settings) as two:
        burst = settings.rate_limit.burst
        verdicts = [await (one if i % 2 else two).engine.flood.check("test:flooder") for i in range(burst + 3)]
        assert verdicts == ["ok"] * burst + ["warn", "drop", "drop"]  # one bucket for both processes
        first = await one.engine.handle(dm(RED_FLAG, user="repeat"))
        again = await two.engine.handle(dm(RED_FLAG, user="repeat"))  # the other process knows it went out
        assert first.kind == again.kind == "escalation"
        assert len(again.replies) == 1 and len(again.replies[0].text) < len(first.replies[0].text)  # a reminder


async def test_flood_control_decides_from_memory_while_the_database_is_gone(rt: Runtime, pg_url: str) -> None:
    await _allow(pg_url, False)
    try:
        started = time.monotonic()
        verdicts = [await rt.engine.flood.check("test:offline") for _ in range(rt.settings.rate_limit.burst + 2)]
        assert time.monotonic() - started < 2.0
        assert verdicts[-2:] == ["warn", "drop"]
    finally:
        await _allow(pg_url, True)
