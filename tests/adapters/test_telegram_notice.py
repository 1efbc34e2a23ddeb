"""The one-time first-message notice is recorded as shown only once Telegram has it (issue 14): a stop between
composing and delivering leaves it unrecorded, and the update replayed from the inbox after the restart shows it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support import agree, real_runtime

from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.bootstrap import Runtime
from bot.storage.sqlite.inbox import SQLiteInbox as Inbox
from tests.adapters.fake_telegram import FakeBotAPI

BOT = "runbot_test_bot"
SLOW, CUT, OTHER = 5101, 5202, 5303
QUESTION = "why does my lower back hurt after running"
SECOND = "should I stretch before a run"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with real_runtime(tmp_path / "runbot.db") as rt:
        # runners with a row (they agreed to storing): the notice is recorded in it. A runner with no row is
        # remembered in memory only (issue 16): tests/core/test_consent_rows.py
        await agree(rt, str(SLOW), str(CUT), str(OTHER), platform="telegram")
        yield rt


async def _adapter(api: FakeBotAPI, runtime: Runtime) -> TelegramAdapter:
    settings = TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}")
    inbox = Inbox(runtime.store.path, "telegram", store=runtime.store)
    tg = TelegramAdapter(runtime.engine, settings, api.token, inbox=inbox)
    runtime.add_adapter(tg)
    await tg.start()
    return tg


def _shown(db: str, user: int) -> int | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT notice_shown FROM users WHERE platform = 'telegram' AND platform_user_id = ?", (str(user),)
        ).fetchone()
    return None if row is None else int(row[0])


async def _until(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll (the fake's ``wait_for`` re-checks only after an API call; a database row comes without one)."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _notices(api: FakeBotAPI, user: int, first_line: str) -> int:
    return sum(m["text"].splitlines()[0] == first_line for m in api.sent(user))


async def _notice_line(api: FakeBotAPI, runtime: Runtime) -> str:
    tg = await _adapter(api, runtime)
    try:
        await api.send_text(user_id=OTHER, text=QUESTION)
        sent = await api.wait_sent(OTHER, 2)
    finally:
        await tg.stop()
    return sent[0]["text"].splitlines()[0]


@pytest.mark.slow
async def test_the_notice_is_recorded_once_delivered_and_not_repeated_meanwhile(
    api: FakeBotAPI, runtime: Runtime
) -> None:
    notice = await _notice_line(api, runtime)
    assert _shown(runtime.store.path, OTHER) == 1
    api.chat_delays[SLOW] = 3.0  # Telegram takes its time with this chat's replies
    tg = await _adapter(api, runtime)
    try:
        await api.send_text(user_id=SLOW, text=QUESTION)
        await api.send_text(user_id=SLOW, text=SECOND)  # handled while the first replies still wait
        await _until(lambda: _shown(runtime.store.path, SLOW) is not None, 2, "the user's row")
        await asyncio.sleep(0.3)
        assert api.sent(SLOW) == [] and _shown(runtime.store.path, SLOW) == 0  # composed, not delivered: unrecorded
        await api.wait_sent(SLOW, 3, within=10)  # notice + two answers
        await _until(lambda: _shown(runtime.store.path, SLOW) == 1, 3, "the notice recorded")
    finally:
        await tg.stop()
    assert _notices(api, SLOW, notice) == 1  # the second message did not repeat it


@pytest.mark.slow
async def test_a_stop_before_delivery_shows_the_notice_after_the_restart(api: FakeBotAPI, runtime: Runtime) -> None:
    notice = await _notice_line(api, runtime)
    api.chat_delays[CUT] = 30.0  # the reply hangs until the bot is stopped
    tg = await _adapter(api, runtime)
    try:
        await api.send_text(user_id=CUT, text=QUESTION)
        await _until(lambda: _shown(runtime.store.path, CUT) is not None, 3, "the user's row")
        await asyncio.sleep(0.3)
    finally:
        await tg.stop()  # the delivery is cut off: the update stays pending in the inbox
    assert _shown(runtime.store.path, CUT) == 0
    del api.chat_delays[CUT]
    tg = await _adapter(api, runtime)
    try:
        await api.wait_for(lambda: _notices(api, CUT, notice) == 1, within=5)
        await _until(lambda: _shown(runtime.store.path, CUT) == 1, 3, "the notice recorded")
    finally:
        await tg.stop()
    assert _notices(api, CUT, notice) == 1
