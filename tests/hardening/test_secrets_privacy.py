"""Secrets never reach the logs; message text never reaches INFO logs; unanswered questions carry no user id;
retention runs in the App's housekeeping."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT, build_shipped, dm, group, real_runtime

from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings
from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.app import App
from bot.config import KnowledgeSettings, PrivacySettings, Settings
from bot.core.ports import ManualClock, StartupError
from bot.storage.sqlite import SQLiteStore
from tests.adapters.fake_discord import FakeDiscord
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import (
    DISCORD_TOKEN,
    GROUP,
    TELEGRAM_BOT,
    TELEGRAM_TOKEN,
    discord_bot,
    telegram_bot,
)

MARKER = "zqxwvmarker"
QUESTION = f"why does my lower back hurt after running {MARKER}"
UNANSWERED = f"{MARKER} plimbo quaggle snorfwick glarb"
RED_FLAG = f"since this morning I can't feel my groin or bum and I wet myself without noticing {MARKER}"


def _token_pieces(token: str) -> list[str]:
    """The token and its secret part (a log that printed only the part after ':' or the last '.' leaks it too)."""
    return [token, token.split(":", 1)[-1], token.rsplit(".", 1)[-1]]


def _assert_absent(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    assert caplog.records, "nothing was logged: the capture is not working"
    blobs = [caplog.text] + [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    for secret in secrets:
        for blob in blobs:
            assert secret not in blob


# ------------------------------------------------------------------------------------------------ secrets
async def test_discord_start_up_and_failed_login_never_log_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeDiscord() as fake, real_runtime(tmp_path / "d.db") as rt:
        alice = fake.add_user("alice")
        with fake.patch():
            async with discord_bot(rt, fake=fake, token=DISCORD_TOKEN) as world:
                mark = fake.mark()
                await fake.message(alice, QUESTION, channel_id=world.channel, mention_bot=True)
                await fake.wait_sent(1, since=mark)
            assert fake.token_seen == DISCORD_TOKEN  # the adapter did use it
            bad = DISCORD_TOKEN[:-4] + "XXXX"
            fake.invalid_tokens.add(bad)
            adapter = DiscordAdapter(rt.engine, DiscordAdapterSettings(), bad, guild_ready_timeout=0)
            with pytest.raises(StartupError) as info:
                await adapter.start()
            await adapter.stop()
    assert "DISCORD_TOKEN" in str(info.value)
    _assert_absent(caplog, _token_pieces(DISCORD_TOKEN) + _token_pieces(bad))
    assert not any(p in str(info.value) for p in _token_pieces(bad))


async def test_telegram_start_up_and_failed_login_never_log_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await api.start()
    bad = TELEGRAM_TOKEN[:-4] + "XXXX"
    try:
        async with real_runtime(tmp_path / "t.db") as rt:
            async with telegram_bot(rt, api):
                await api.send_text(user_id=4242, text=QUESTION)
                await api.wait_sent(4242, 1)
            adapter = TelegramAdapter(rt.engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}"),
                                      bad)
            with pytest.raises(StartupError) as info:
                await adapter.start()
    finally:
        await api.stop()
    assert api.bad_token_calls >= 1 and "TELEGRAM_TOKEN" in str(info.value)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records), "httpx request lines were captured"
    _assert_absent(caplog, _token_pieces(TELEGRAM_TOKEN) + _token_pieces(bad))
    assert not any(p in str(info.value) for p in _token_pieces(bad))


@pytest.mark.slow
def test_a_token_in_the_config_file_warns_on_stderr_without_repeating_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "telegram:\n"
        f"  webhook_url: https://bot.example.org/{TELEGRAM_TOKEN}\n"
        "discord:\n"
        f"  enabled: true\n"
        f"database:\n  path: '{DISCORD_TOKEN}'\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "check", str(KNOWLEDGE)],
        capture_output=True, text=True, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "looks like a bot token" in line]
    assert len(warnings) == 2, result.stderr
    assert any("telegram.webhook_url" in w for w in warnings) and any("database.path" in w for w in warnings)
    for secret in _token_pieces(TELEGRAM_TOKEN) + _token_pieces(DISCORD_TOKEN):
        assert secret not in result.stderr and secret not in result.stdout


# ------------------------------------------------------------------------------------------------ privacy
async def test_no_message_text_in_info_logs_engine_and_both_adapters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with real_runtime(tmp_path / "e.db") as rt:
        for text in (QUESTION, UNANSWERED, RED_FLAG, f"/ask {UNANSWERED}", f"/{MARKER}", "/triage", MARKER):
            await rt.engine.handle(dm(text))
            await rt.engine.handle(group(text, name=MARKER))
        await rt.engine.handle(dm(choice=f"faq:{MARKER}"))
        async with FakeDiscord() as fake:
            alice = fake.add_user("alice")
            with fake.patch():
                async with discord_bot(rt, fake=fake) as world:
                    for text in (QUESTION, UNANSWERED, RED_FLAG):
                        mark = fake.mark()
                        await fake.message(alice, text, channel_id=world.channel, mention_bot=True)
                        await fake.wait_sent(1, since=mark)
                        mark = fake.mark()
                        await fake.message(alice, text)
                        await fake.wait_sent(1, since=mark)
        api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
        await api.start()
        try:
            async with telegram_bot(rt, api):
                for i, text in enumerate((QUESTION, UNANSWERED, RED_FLAG)):
                    before = len(api.sent(4242))
                    await api.send_text(user_id=4242, text=text, first_name=MARKER)
                    await api.wait_sent(4242, before + 1)
                    before = len(api.sent(GROUP))
                    await api.send_text(user_id=4343 + i, chat_id=GROUP, chat_type="supergroup", first_name=MARKER,
                                        text=f"@{TELEGRAM_BOT} {text}")
                    await api.wait_sent(GROUP, before + 1)
        finally:
            await api.stop()
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert info, "INFO records were captured"
    for record in info:
        assert MARKER not in record.getMessage(), (record.name, record.getMessage())
    assert MARKER not in "\n".join(line for line in caplog.text.splitlines())


async def test_unanswered_questions_are_stored_without_platform_ids(tmp_path: Path, clock: ManualClock) -> None:
    """Linked to the asker only by the internal row id (so /forget and /mydata find them, issue 14), never by a
    platform id, chat or name."""
    rt = build_shipped(Settings(), clock=clock, db_path=tmp_path / "u.db")
    async with rt:
        for user in ("user-8675309", "user-4815162342"):
            await rt.engine.handle(dm(UNANSWERED, user=user))
            await rt.engine.handle(group(UNANSWERED, user=user, name="Alexandra"))
        rows = await rt.store.unanswered()
        assert [r["count"] for r in rows if MARKER in r["text"]] == [4]
        async with rt.store.db.execute("PRAGMA table_info(unanswered)") as cur:
            columns = {row[1] for row in await cur.fetchall()}
        assert not any("chat" in c or "platform" in c for c in columns), columns
        assert {c for c in columns if "user" in c} == {"user_id"}
        async with rt.store.db.execute("SELECT * FROM unanswered") as cur:
            cells = " ".join(str(v) for row in await cur.fetchall() for v in tuple(row))
        for private in ("8675309", "4815162342", "chat-user", "club-chat", "Alexandra", "alexandra"):
            assert private not in cells


async def test_app_housekeeping_applies_the_retention_period(tmp_path: Path) -> None:
    clock = ManualClock()
    db = tmp_path / "retention.db"
    settings = Settings(privacy=PrivacySettings(retention_days=30), knowledge=KnowledgeSettings(path=str(KNOWLEDGE),
                                                                                                watch=False))
    async with SQLiteStore(db, clock=clock) as store:  # rows written 31 days "ago"
        old_user = await store.get_or_create_user("test", "old")
        await store.log_escalation(old_user, "emergency", "cauda-equina")
        await store.record_unanswered("an old unanswered question")
        await store.flush()
    clock.advance(days=31)
    async with SQLiteStore(db, clock=clock) as store:  # and rows from today
        await store.log_escalation(await store.get_or_create_user("test", "new"), "urgent", "new-leg-weakness")
        await store.record_unanswered("a fresh unanswered question")
        await store.flush()

    rt = build_shipped(settings, clock=clock, db_path=db)
    app = App(settings, runtime=rt)
    app.housekeeping_seconds = 0.02
    run = asyncio.create_task(app.run(adapters=[]))

    async def purged() -> None:
        while True:
            if rt.store._db is not None:
                async with rt.store.db.execute("SELECT COUNT(*) FROM escalations") as cur:
                    if (await cur.fetchone())[0] == 1:
                        return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(purged(), 10)
    app.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    async with SQLiteStore(db, clock=clock) as store:
        assert [r["text"] for r in await store.unanswered()] == ["a fresh unanswered question"]
        async with store.db.execute("SELECT category FROM escalations") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["new-leg-weakness"]
