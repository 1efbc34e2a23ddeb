"""The engine on PostgreSQL with two processes answering one runner: the runner's turns are serialised across
processes (a per-user advisory lock held for the message's whole turn), so a button pressed twice and handled by two
processes at once moves the check on once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pgtest
import pytest
from support import agree, build_shipped, button, dm

from bot.config import DatabaseSettings, RateLimitSettings, Settings


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pgtest.fresh_database() as url:
        yield url


async def test_one_runner_s_turns_are_serialised_across_processes(pg_url: str) -> None:
    await pgtest.empty_tables(pg_url)
    settings = Settings(database=DatabaseSettings(url=pg_url), rate_limit=RateLimitSettings(enabled=False))
    async with build_shipped(settings) as one, build_shipped(settings) as two:
        moved = 0
        for round_ in range(10):
            who = f"runner-{round_}"
            await agree(one, who)
            started = await one.engine.handle(dm("/triage", user=who))
            step = next(c for r in started.replies for c in r.choices if button(c.payload, "tri"))
            first, second = await asyncio.gather(
                one.engine.handle(dm(step.label, user=who, choice=step.payload)),
                two.engine.handle(dm(step.label, user=who, choice=step.payload)),
            )
            moved += [first.kind, second.kind].count("expired") == 1  # one moved the check on, one found it moved
        assert moved == 10


async def test_a_runner_without_a_row_sees_the_notice_once_whichever_process_answers(pg_url: str) -> None:
    await pgtest.empty_tables(pg_url)
    settings = Settings(database=DatabaseSettings(url=pg_url))
    notice = "I'm not for emergencies"
    async with build_shipped(settings) as one, build_shipped(settings) as two:
        first = await one.engine.handle(dm("why does my lower back hurt after running?", user="wanderer"))
        second = await two.engine.handle(dm("should I stretch before a run?", user="wanderer"))
        assert any(notice in r.text for r in first.replies)
        assert not any(notice in r.text for r in second.replies)  # the other process knew
        assert await one.store.find_user("test", "wanderer") is None  # still no row about them
