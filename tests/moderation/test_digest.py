"""The weekly digest (issue 17): counts and new unanswered question groups, never who asked; once a week, to the
moderators' chat through the real Telegram adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import build_shipped

from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.config import RateLimitSettings, Settings
from bot.core.digest import WeeklyDigest, last_slot, week_key
from bot.core.engine import EngineOptions
from bot.core.messages import IncomingMessage
from bot.core.ports import ManualClock
from bot.storage.sqlite.moderation import SqliteModerationLog
from tests.adapters.fake_telegram import FakeBotAPI

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
MOD_CHAT = -100777


def test_the_digest_time_is_the_configured_weekday_and_hour_in_utc() -> None:
    assert MONDAY_9.weekday() == 0
    assert last_slot(MONDAY_9 + timedelta(minutes=5), "monday", 9) == MONDAY_9
    assert last_slot(MONDAY_9 - timedelta(minutes=1), "monday", 9) == MONDAY_9 - timedelta(days=7)
    thursday_18 = MONDAY_9 + timedelta(days=3, hours=9)
    assert last_slot(thursday_18 - timedelta(hours=9), "thursday", 18) == thursday_18 - timedelta(days=7)
    assert last_slot(thursday_18, "thursday", 18) == thursday_18
    assert week_key(MONDAY_9) == "2026-W10"


async def test_the_weekly_digest_counts_what_happened_and_goes_out_once(tmp_path: Path, api: FakeBotAPI) -> None:
    clock = ManualClock(MONDAY_9 - timedelta(days=2))
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    rt = build_shipped(settings, clock=clock, db_path=tmp_path / "runbot.db",
               options=EngineOptions(first_notice=False))
    async with rt:
        for i, text in enumerate([
            "why does my lower back hurt after running",
            "my friend says pickle juice cures cramp, true?",
            "my friend says pickle juice cures cramp, true?",
            "since this morning I can't feel my groin or bum and I wet myself without noticing",
        ]):
            await rt.engine.handle(IncomingMessage("test", f"runner-{i}", f"chat-{i}", text=text))
        adapter = TelegramAdapter(rt.engine, TelegramAdapterSettings(
            api_base_url=f"http://127.0.0.1:{api.port}", moderator_chat_id=MOD_CHAT), api.token)
        await adapter.start()
        rt.add_adapter(adapter)
        try:
            log = SqliteModerationLog(rt.store)
            digest = WeeklyDigest(rt.store, log, rt.report_problem, clock, day="monday", hour=9)
            assert not await digest.send_if_due()  # Saturday: last Monday's digest is long past
            clock.set(MONDAY_9 + timedelta(minutes=1))
            assert await digest.send_if_due()
            await api.wait_for(lambda: len(api.sent(MOD_CHAT)) == 1)
            text = api.sent(MOD_CHAT)[0]["text"]
            assert "Weekly digest" in text and "messages handled" in text
            assert " 4  messages handled" in text and " 1  answered from the FAQ" in text
            assert " 1  emergency escalations" in text and " 0  urgent escalations" in text
            assert "2  my friend says pickle juice cures cramp true" in text
            assert "runner-" not in text and "chat-" not in text
            other_process = WeeklyDigest(rt.store, SqliteModerationLog(rt.store), rt.report_problem, clock)
            assert not await other_process.send_if_due() and not await digest.send_if_due()
            clock.advance(days=7)
            assert await digest.send_if_due()
            await api.wait_for(lambda: len(api.sent(MOD_CHAT)) == 2)
            assert "No new unanswered questions this week." in api.sent(MOD_CHAT)[1]["text"]
        finally:
            await adapter.stop()
