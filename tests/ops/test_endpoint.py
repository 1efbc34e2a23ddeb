"""The operations endpoint (issue 18): /healthz and /metrics of the real App, with the real Telegram adapter against
the fake Bot API and a real SQLite file; /metrics is read with prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pgtest
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import KNOWLEDGE, build_shipped, shipped_knowledge, vague_questions

from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.app import App
from bot.bootstrap import Runtime
from bot.config import (
    ConfigError,
    DatabaseSettings,
    KnowledgeSettings,
    OpsSettings,
    RateLimitSettings,
    Settings,
    load_settings,
)
from bot.storage.sqlite.inbox import SQLiteInbox as Inbox
from tests.adapters.fake_telegram import FakeBotAPI

QUESTION = "why does my lower back hurt after running"
VAGUE = vague_questions(shipped_knowledge())[0]
UNANSWERED = "how do I register for the club relay league team"
RED_FLAG = "sciatica down both legs now instead of just one, and weird numbness around my bum and groin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    app: App
    runtime: Runtime
    adapter: TelegramAdapter
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def wait_status(self, status: int, within: float) -> tuple[float, Any]:
        """Poll /healthz every 0.1 s until it answers ``status``; how long that took and the body."""
        started = time.monotonic()
        body: Any = None
        while time.monotonic() - started < within:
            try:
                got, body = await self.get("/healthz")
            except aiohttp.ClientConnectionError:  # not listening yet
                got = 0
            if got == status:
                return time.monotonic() - started, body
            await asyncio.sleep(0.1)
        raise AssertionError(f"/healthz did not turn {status} within {within} s; last body: {body}")

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = await self.get("/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@pytest.fixture
async def running(tmp_path: Path, api: FakeBotAPI) -> AsyncIterator[Running]:
    port = free_port()
    settings = Settings(
        knowledge=KnowledgeSettings(path=str(KNOWLEDGE), watch=False),
        rate_limit=RateLimitSettings(enabled=False),
        ops=OpsSettings(listen=str(port)),
    )
    db = tmp_path / "runbot.db"
    rt = build_shipped(settings, db_path=db)
    app = App(settings, runtime=rt)
    adapter = TelegramAdapter(
        rt.engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}"), api.token,
        inbox=Inbox(db, "telegram", store=rt.store),
    )
    task = asyncio.create_task(app.run(adapters=[adapter]))
    async with aiohttp.ClientSession() as http:
        r = Running(app, rt, adapter, f"http://127.0.0.1:{port}", http)
        try:
            await r.wait_status(200, 20)
            yield r
        finally:
            app.request_stop()
            assert await asyncio.wait_for(task, 15) == 0


async def test_healthz_reports_platforms_database_and_scheduler(running: Running) -> None:
    status, body = await running.get("/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["platforms"] == {"telegram": {"connected": True, "mode": "polling"}}
    assert body["database"]["ok"] is True and body["database"]["ms"] >= 0
    assert body["scheduler"]["ok"] is True and 0 <= body["scheduler"]["heartbeat_age_seconds"] < 31


async def test_metrics_parse_and_count_what_the_bot_did(running: Running, api: FakeBotAPI) -> None:
    users = {QUESTION: 7101, VAGUE: 7102, UNANSWERED: 7103, RED_FLAG: 7104}
    outcomes = []
    engine = running.runtime.engine
    original = engine.handle

    async def recording(msg: Any) -> Any:
        outcome = await original(msg)
        outcomes.append(outcome)
        return outcome

    engine.handle = recording  # type: ignore[method-assign]
    for text, user in users.items():
        await api.send_text(user_id=user, text=text)
        await api.wait_sent(user, 1)
    await api.wait_for(lambda: len(outcomes) == len(users))
    samples = await running.metrics()

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    kinds = [o.kind for o in outcomes]
    assert {"answer", "did-you-mean", "fallback", "escalation"} <= set(kinds)  # the four inputs did what they are for
    for kind in set(kinds):
        assert value("runbot_messages_total", platform="telegram", outcome=kind) == kinds.count(kind)
    levels = [o.escalation.level for o in outcomes if o.escalation is not None]
    for level in set(levels):
        assert value("runbot_escalations_total", platform="telegram", level=level) == levels.count(level)
    assert value("runbot_unanswered_total", platform="telegram") == 1
    assert value("runbot_handle_seconds_count", platform="telegram") == len(users)
    assert value("runbot_handle_seconds_bucket", platform="telegram", le="+Inf") == len(users)
    assert value("runbot_platform_connected", platform="telegram") == 1
    assert value("runbot_database_up") == 1 and value("runbot_healthy") == 1
    assert ("runbot_queue_depth", (("platform", "telegram"), ("queue", "inbox"))) in samples
    assert ("runbot_queue_depth", (("platform", "telegram"), ("queue", "outbox"))) in samples
    assert ("runbot_scheduler_heartbeat_age_seconds", ()) in samples


@pytest.mark.slow
async def test_healthz_turns_503_within_5_s_of_the_database_going_away_and_200_when_it_returns(
    running: Running,
) -> None:
    # another process takes the database's write lock and keeps it: the bot can no longer write
    holder = sqlite3.connect(running.runtime.store.path, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        took, body = await running.wait_status(503, 5)
        assert took < 5
        assert body["status"] == "unhealthy" and body["database"]["ok"] is False
        assert "locked" in body["database"]["error"]
        assert body["platforms"]["telegram"]["connected"] is True  # only the database is down
        samples = await running.metrics()
        assert samples[("runbot_database_up", ())] == 0
    finally:
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()
    _, body = await running.wait_status(200, 5)
    assert body["database"]["ok"] is True


@pytest.mark.slow
async def test_healthz_turns_503_when_the_database_file_is_deleted(running: Running) -> None:
    # SQLite would go on writing to the deleted file, lost at the next start
    await asyncio.to_thread(Path(running.runtime.store.path).unlink)
    took, body = await running.wait_status(503, 5)
    assert took < 5
    assert "was deleted or replaced" in body["database"]["error"]


@pytest.mark.slow
async def test_healthz_turns_503_when_telegram_is_unreachable(running: Running, api: FakeBotAPI) -> None:
    await api.stop()  # getUpdates now fails: the bot receives nothing
    _, body = await running.wait_status(503, 10)
    assert body["platforms"]["telegram"]["connected"] is False
    assert body["database"]["ok"] is True


@pytest.mark.slow
async def test_healthz_turns_503_when_the_scheduler_stops(running: Running) -> None:
    health = running.app.ops.health  # type: ignore[union-attr]
    assert health.scheduler_task is not None
    health.scheduler_task.cancel()
    _, body = await running.wait_status(503, 5)
    assert body["scheduler"] == {"ok": False, "error": "the follow-up scheduler stopped"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9090", "127.0.0.1:9090"), (":9091", "127.0.0.1:9091"), ("0.0.0.0:80", "0.0.0.0:80"),
        ("[::1]:9092", "[::1]:9092"),
    ],
)
def test_ops_listen_defaults_to_localhost(tmp_path: Path, value: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"ops:\n  listen: '{value}'\n", encoding="utf-8")
    assert load_settings(cfg).ops.listen == expected
    assert Settings().ops.listen is None  # off unless asked


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1:0", "127.0.0.1:70000", "my host:80"])
def test_a_wrong_ops_listen_is_one_line_with_its_line(tmp_path: Path, value: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"logging: {{level: INFO}}\nops:\n  listen: '{value}'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value).startswith(f"{cfg}:3: ops.listen: "), str(info.value)


async def _allow_connections(url: str, allowed: bool) -> None:
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


@pytest.mark.slow
async def test_healthz_on_postgresql_turns_503_when_its_connections_are_cut_and_200_when_it_is_back() -> None:
    pgtest.skip_without_postgres()
    url = await pgtest.create_database()
    port = free_port()
    settings = Settings(
        knowledge=KnowledgeSettings(path=str(KNOWLEDGE), watch=False), database=DatabaseSettings(url=url),
        ops=OpsSettings(listen=str(port)),
    )
    app = App(settings, runtime=build_shipped(settings))
    task = asyncio.create_task(app.run(adapters=[]))
    try:
        async with aiohttp.ClientSession() as http:
            r = Running(app, app.runtime, None, f"http://127.0.0.1:{port}", http)  # type: ignore[arg-type]
            await r.wait_status(200, 20)
            await _allow_connections(url, False)  # every connection terminated, new ones refused
            took, body = await r.wait_status(503, 5)
            assert took < 5 and body["database"]["ok"] is False, body
            assert body["scheduler"]["ok"] is True  # only the database is down
            await _allow_connections(url, True)
            _, body = await r.wait_status(200, 10)
            assert body["database"]["ok"] is True
    finally:
        await _allow_connections(url, True)
        app.request_stop()
        await asyncio.wait_for(task, 15)
        await pgtest.drop_database(url)
