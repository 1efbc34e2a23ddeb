"""Telegram with several processes (issue 18): a shared inbox that processes drain per chat in order, and polling
that stays single-consumer. Real `python -m bot run` processes against the fake Telegram (tests/helpers/
telegram_cluster.py plays Telegram's webhook side); every chat must receive exactly what the real engine answers
to its conversation, once and in order, and end on the same triage step."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pgtest
import pytest

from tests.helpers.telegram_cluster import (
    QUESTION,
    BotProcess,
    check,
    expected_conversation,
    free_port,
    new_api,
    run_cluster,
    wait_until,
)

FIRST_USER = 870_000


def _sqlite(path: Path) -> str:
    return f"database:\n  path: {path}\n"


def _triage_steps(db: Path, users: list[int]) -> dict[int, str | None]:
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute(
            "SELECT u.platform_user_id, t.step_id FROM users u LEFT JOIN triage_state t ON t.user_id = u.id"
        ).fetchall())
    return {u: rows.get(str(u)) for u in users}


@pytest.mark.slow
async def test_a_shared_inbox_answers_each_update_once_in_order(tmp_path: Path) -> None:
    expected = await expected_conversation()
    api = new_api()
    await api.start()
    db = tmp_path / "runbot.db"
    bot = BotProcess(tmp_path / "bot", api.port, _sqlite(db), extra="  inbox: shared\n")
    users = [FIRST_USER + i for i in range(60)]
    try:
        await bot.start()
        await wait_until(lambda: bool(api.calls_to("setWebhook")), 60, "setWebhook", [bot])
        await run_cluster(api, [bot], users, expected, within=120)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        assert await bot.stop() == 0
    finally:
        await bot.stop()
        await api.stop()
    assert "Traceback" not in bot.stderr(), bot.stderr()[-3000:]
    verdict = check(api, users, expected)
    assert not verdict.wrong, f"{len(verdict.wrong)} chat(s) without the expected replies: {verdict.wrong}"
    assert verdict.repeated_notices == 0  # one process: it remembers every notice it showed
    assert set(_triage_steps(db, users).values()) == {expected.step_id}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT state, COUNT(*) FROM inbox GROUP BY state").fetchall() == [("done", 4 * len(users))]
        assert conn.execute("SELECT COUNT(*) FROM inbox_chats").fetchone() == (0,)  # every chat let go at the stop


@pytest.mark.slow
async def test_a_second_poller_says_so_in_one_line_and_takes_over_when_the_first_stops(tmp_path: Path) -> None:
    api = new_api()
    await api.start()
    db = tmp_path / "runbot.db"
    first = BotProcess(tmp_path / "first", api.port, _sqlite(db), mode="polling")
    second = BotProcess(tmp_path / "second", api.port, _sqlite(db), mode="polling")
    bots = [first, second]
    try:
        await first.start()
        await wait_until(lambda: bool(api.polls), 60, "the first poller", bots)
        await second.start()
        await wait_until(lambda: "already polls this bot" in second.stderr(), 60, "the second's line", bots)
        for i in range(20):
            await api.send_text(user_id=FIRST_USER + i, text=QUESTION)
        await wait_until(lambda: all(len(api.sent(FIRST_USER + i)) >= 2 for i in range(20)), 60, "answers", bots)
        await asyncio.sleep(1.0)
        # the first stops (a deploy): the second takes over polling within a third of the lease
        assert await first.stop() == 0
        stopped = time.monotonic()
        for i in range(20, 40):
            await api.send_text(user_id=FIRST_USER + i, text=QUESTION)
        await wait_until(lambda: all(len(api.sent(FIRST_USER + i)) >= 2 for i in range(20, 40)), 60, "answers",
                         [second])
        took = time.monotonic() - stopped
        await asyncio.sleep(1.0)
        assert await second.stop() == 0
    finally:
        for bot in bots:
            await bot.stop()
        await api.stop()
    log = second.stderr()
    assert "Traceback" not in log + first.stderr()
    assert log.count("already polls this bot") == 1  # one line, not one per poll
    assert "this process polls now" in log
    counts = [len(api.sent(FIRST_USER + i)) for i in range(40)]
    assert counts == [2] * 40, counts  # notice + answer, once: never fetched by both
    assert took < 15, f"the second poller took {took:.1f} s to take over"


async def _pg_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    import asyncpg

    con = await asyncpg.connect(url, timeout=5)
    try:
        return [tuple(r) for r in await con.fetch(sql)]
    finally:
        await con.close()


async def _handled(port: int) -> float:
    """Messages this process answered, from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "runbot_messages_total")


@pytest.mark.slow
async def test_500_runners_through_the_webhook_to_two_processes_on_postgres(tmp_path: Path) -> None:
    """The acceptance test of issue 18: 500 runners x 4 updates through the fake Telegram webhook to a receiving
    process and a worker on one PostgreSQL database -> every update answered once, in order, triage consistent."""
    pgtest.skip_without_postgres()
    expected = await expected_conversation()
    url = await pgtest.create_database()
    api = new_api()
    await api.start()
    ports = [free_port(), free_port()]
    receiver = BotProcess(tmp_path / "receiver", api.port, f"database:\n  url: {url}\nops:\n  listen: {ports[0]}\n",
                          extra="  inbox: shared\n")
    worker = BotProcess(tmp_path / "worker", api.port, f"database:\n  url: {url}\nops:\n  listen: {ports[1]}\n",
                        mode="worker", extra="  inbox: shared\n")
    bots = [receiver, worker]
    users = [FIRST_USER + i for i in range(500)]
    try:
        for bot in bots:
            await bot.start()
        await wait_until(lambda: bool(api.calls_to("setWebhook")), 60, "setWebhook", bots)
        seconds = await run_cluster(api, bots, users, expected, within=300)
        await asyncio.sleep(1.0)  # a duplicate would arrive now
        shares = [await _handled(port) for port in ports]
        for bot in bots:
            assert await bot.stop() == 0, bot.stderr()[-3000:]
        verdict = check(api, users, expected)
        assert not verdict.wrong, f"{len(verdict.wrong)} chat(s) without the expected replies: {verdict.wrong}"
        steps = dict(await _pg_rows(url, "SELECT u.platform_user_id, t.step_id FROM users u"
                                         " JOIN triage_state t ON t.user_id = u.id"))
        assert {steps.get(str(u)) for u in users} == {expected.step_id}
        assert await _pg_rows(url, "SELECT state, COUNT(*) FROM inbox GROUP BY state") == [("done", 4 * len(users))]
        assert await _pg_rows(url, "SELECT COUNT(*) FROM inbox_chats") == [(0,)]
    finally:
        for bot in bots:
            await bot.stop()
        await api.stop()
        await pgtest.drop_database(url)
    for bot in bots:
        assert "Traceback" not in bot.stderr(), bot.stderr()[-3000:]
    assert all(share > 0 for share in shares), f"one process answered nothing: {shares}"
    print(f"postgres, receiver + worker: {4 * len(users)} updates in {seconds:.1f} s, answered {shares}, "
          f"{verdict.repeated_notices} first-message notice(s) shown again")
