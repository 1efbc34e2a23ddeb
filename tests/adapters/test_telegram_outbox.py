"""The Telegram outbox and intake with the real python-telegram-bot client against the fake Bot API: one throttled or
hanging chat never delays another, an emergency reply jumps its chat's queue, buttons stay with their owner, names
cannot ping or link anyone."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import real_runtime

from bot.adapters.telegram_adapter import NOT_YOURS, TelegramAdapter, TelegramAdapterSettings
from bot.adapters.telegram_text import safe_name
from bot.bootstrap import Runtime
from bot.storage.sqlite.inbox import SQLiteInbox as Inbox
from tests.adapters.fake_telegram import FakeBotAPI, compute_entities

BOT = "runbot_test_bot"
A, B, OWNER, CLICKER = 4101, 4202, 4303, 4404
GROUP = -100999
QUESTION = "why does my lower back hurt after running"
SECOND = "should I stretch before a run"
RED_FLAG = "sciatica down both legs now instead of just one, and weird numbness around my bum and groin"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with real_runtime(tmp_path / "runbot.db") as rt:
        yield rt


@pytest.fixture
async def adapter(api: FakeBotAPI, runtime: Runtime) -> AsyncIterator[TelegramAdapter]:
    settings = TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}")
    tg = TelegramAdapter(runtime.engine, settings, api.token)
    runtime.add_adapter(tg)
    await tg.start()
    yield tg
    await tg.stop()
    assert api.unknown == []


def _sent_texts(api: FakeBotAPI, chat: int) -> list[str]:
    return [m["text"] for m in api.sent(chat)]


def _is_alarm(text: str) -> bool:
    return "999" in text or "emergency" in text.lower()


@pytest.mark.slow
async def test_a_throttled_chat_does_not_delay_another_chats_red_flag(
    api: FakeBotAPI, adapter: TelegramAdapter
) -> None:
    # A is a returning user with a conversation under way; then Telegram throttles A's chat for 20 s
    await api.send_text(user_id=A, text=QUESTION)
    await api.wait_sent(A, 2)  # first contact: notice + answer
    api.throttle(A, 20)
    await api.send_text(user_id=A, text=QUESTION)
    await api.send_text(user_id=A, text=SECOND)
    await api.wait_for(lambda: any(c.method == "sendMessage" and c.params["chat_id"] == A for c in api.calls[-5:]))
    await api.send_text(user_id=A, text=RED_FLAG)  # queued behind A's two answers while A is throttled

    started = time.monotonic()
    await api.send_text(user_id=B, text=RED_FLAG)
    sent_b = await api.wait_sent(B, 1, within=3.0)  # the alarm comes alone (no first-contact notice)
    assert time.monotonic() - started < 3.0
    assert any(_is_alarm(m["text"]) for m in sent_b), _sent_texts(api, B)
    assert len(api.sent(A)) == 2, "A's chat is still throttled"

    # after the retry-after, A gets everything; A's emergency jumped ahead of the answer still waiting in the queue
    after = (await api.wait_sent(A, 5, within=25.0))[2:]
    assert len(after) == 3
    retry = [c for c in api.calls_to("sendMessage") if c.params["chat_id"] == A and c.at >= started]
    assert retry and retry[-1].at - started >= 15  # nothing was sent to A before Telegram allowed it
    texts = [m["text"] for m in after]
    alarm = next(i for i, t in enumerate(texts) if _is_alarm(t))
    assert alarm == 1, texts  # the answer being retried, then the emergency, then the queued answer
    assert "stretch" in texts[2].lower() or "warm" in texts[2].lower(), texts


@pytest.mark.slow
async def test_a_hanging_chat_does_not_delay_another_chat(api: FakeBotAPI, adapter: TelegramAdapter) -> None:
    api.chat_delays[A] = 8.0  # every send to A hangs (beyond the client's timeouts)
    await api.send_text(user_id=A, text=QUESTION)
    await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls))
    await api.send_text(user_id=A, text=SECOND)
    started = time.monotonic()
    await api.send_text(user_id=B, text=RED_FLAG)
    sent_b = await api.wait_sent(B, 1, within=3.0)  # the alarm comes alone (no first-contact notice)
    assert time.monotonic() - started < 3.0
    assert any(_is_alarm(m["text"]) for m in sent_b)
    assert api.sent(A) == []


async def test_someone_elses_buttons_answer_only_the_clicker(
    api: FakeBotAPI, adapter: TelegramAdapter, runtime: Runtime
) -> None:
    # a vague question in the group: the answer carries buttons and quotes the owner's message
    await api.send_text(user_id=OWNER, chat_id=GROUP, chat_type="supergroup", text=f"@{BOT} sore back")
    await api.wait_for(lambda: any(m.get("reply_markup") for m in api.sent(GROUP)))
    answer = next(m for m in api.sent(GROUP) if m.get("reply_markup"))
    assert answer["reply_to_message"]["from"]["id"] == OWNER
    payload = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    before = len(api.calls_to("sendMessage"))

    query = await api.press(user_id=CLICKER, message=answer, data=payload)
    await api.wait_for(
        lambda: any(c.params.get("callback_query_id") == query for c in api.calls_to("answerCallbackQuery"))
    )
    (ack,) = [c for c in api.calls_to("answerCallbackQuery") if c.params["callback_query_id"] == query]
    assert ack.params["text"] == NOT_YOURS and ack.params["show_alert"] is True  # seen by the clicker only
    assert api.message(GROUP, answer["message_id"]).get("reply_markup"), "the owner's buttons are untouched"
    assert not api.calls_to("editMessageReplyMarkup")

    # the owner's own press still works and is answered
    await api.press(user_id=OWNER, message=answer, data=payload)
    await api.wait_for(lambda: len(api.calls_to("sendMessage")) > before)
    assert await runtime.store.find_user("telegram", str(CLICKER)) is None  # the clicker reached nothing


@pytest.mark.parametrize(
    "name",
    ["@victim", "see https://evil.example/x", "evil.example", "/start@other_bot", "#promo $TON", "a@b.co"],
)
def test_display_names_cannot_become_entities(name: str) -> None:
    shown = safe_name(name)
    assert compute_entities(shown) == []
    assert "@" not in shown and "://" not in shown and "." not in shown.replace("․", "")
    assert "/" not in shown and "#" not in shown


async def test_a_group_red_flag_names_the_user_without_pinging_or_linking(
    api: FakeBotAPI, adapter: TelegramAdapter
) -> None:
    name = "@victim evil.example"
    await api.send_text(user_id=A, chat_id=GROUP, chat_type="supergroup", first_name=name, text=f"@{BOT} {RED_FLAG}")
    await api.wait_for(lambda: bool(api.sent(GROUP)))
    public = api.sent(GROUP)[0]["text"]
    assert "victim" in public  # still recognisable
    assert "@victim" not in public and "evil.example" not in public
    assert not [e for e in compute_entities(public) if e["type"] == "mention"]


# ---------------------------------------------------------------------------------------------- the durable inbox
async def _inbox_adapter(api: FakeBotAPI, runtime: Runtime) -> TelegramAdapter:
    settings = TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}")
    tg = TelegramAdapter(runtime.engine, settings, api.token, inbox=Inbox(runtime.store.path, "telegram"))
    runtime.add_adapter(tg)
    await tg.start()
    return tg


async def test_an_update_is_confirmed_to_telegram_only_once_it_is_stored(api: FakeBotAPI, runtime: Runtime) -> None:
    db = runtime.store.path
    unsafe: list[int] = []

    def check(confirmed: list[int]) -> None:  # runs inside the fake's getUpdates, before Telegram forgets them
        with sqlite3.connect(db) as conn:
            stored = {row[0] for row in conn.execute("SELECT update_id FROM inbox WHERE platform LIKE 'telegram:%'")}
        unsafe.extend(i for i in confirmed if i not in stored)

    api.on_confirm = check
    tg = await _inbox_adapter(api, runtime)
    try:
        for user in range(5):
            for q in (QUESTION, SECOND):
                await api.send_text(user_id=A + user, text=q)
        await api.wait_for(lambda: all(len(api.sent(A + u)) >= 3 for u in range(5)), within=10)
    finally:
        await tg.stop()
    assert api.confirmed_offset == api.last_update_id + 1  # everything answered was confirmed at the stop
    assert unsafe == []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT state, payload FROM inbox").fetchall()
    assert len(rows) == 10 and all(row == ("done", "") for row in rows)


async def test_updates_stored_before_a_crash_are_answered_at_start(api: FakeBotAPI, runtime: Runtime) -> None:
    # a message the previous run stored (Telegram already forgot it) but never answered
    message = api.build_message(user_id=B, text=QUESTION)
    inbox = Inbox(runtime.store.path, f"telegram:{api.bot_id}")  # update ids are per bot
    await inbox.open()
    await inbox.add([(41, str(B), {"update_id": 41, "message": message})])
    await inbox.close()
    other_bot = Inbox(runtime.store.path, "telegram:999")  # another token used this database before
    await other_bot.open()
    await other_bot.add([(500, "1", {"update_id": 500, "message": api.build_message(user_id=1, text="hi")})])
    await other_bot.close()
    tg = await _inbox_adapter(api, runtime)
    try:
        sent = await api.wait_sent(B, 2)  # notice + answer
        assert any(m["text"].startswith("Why running hurts my back") for m in sent)
        assert api.polls[0].get("offset") == 42  # after what this bot stored, not the other bot's ids
        assert api.sent(1) == []  # the next fetch starts after what is stored
    finally:
        await tg.stop()


@pytest.mark.slow
async def test_a_locked_database_at_start_still_answers(
    api: FakeBotAPI, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    holder = sqlite3.connect(runtime.store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock while the bot starts
    try:
        tg = await _inbox_adapter(api, runtime)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        await api.send_text(user_id=B, text=RED_FLAG)
        sent = await api.wait_sent(B, 1, within=3.0)
        assert any(_is_alarm(m["text"]) for m in sent)
    finally:
        await tg.stop()
    assert any("the inbox is unavailable" in r.getMessage() for r in caplog.records)
