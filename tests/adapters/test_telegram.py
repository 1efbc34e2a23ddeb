"""The Telegram adapter: the real python-telegram-bot Application and the real engine (shipped knowledge, SQLite in
tmp_path) against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import agree, build_shipped, button, shipped_knowledge

from bot import bootstrap
from bot.adapters.telegram_adapter import (
    COMMANDS,
    SENT_PRIVATELY,
    StartupError,
    TelegramAdapter,
    TelegramAdapterSettings,
    api_urls,
    settings_from_config,
)
from bot.adapters.telegram_text import split_message, strip_mention, utf16_len
from bot.bootstrap import Runtime
from bot.config import RateLimitSettings, Settings, TelegramSettings
from bot.core.commands_parse import parse_command
from bot.core.knowledge import Knowledge
from bot.core.messages import ChatRef, Choice, IncomingMessage, Outcome, Reply
from bot.core.payloads import decode, forget, triage_answer
from bot.core.ports import DeliveryError, ManualClock
from bot.core.triage import TriageFlow
from tests.adapters.fake_telegram import JSON, FakeBotAPI

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"
USER = 4242
OTHER = 5151
MODERATOR = 9001
GROUP = -100777
BOT = "runbot_test_bot"
#: from the dev eval sets (tests/data): a plain question and an emergency red flag
QUESTION = "how come my low back gets achy about 5k into a run"
#: vague questions; the test uses the first one the shipped knowledge answers with "did you mean" (moderators
#: tune the knowledge, and this test is about the buttons, not about the matcher)
VAGUE = ("sore back", "back hurts", "running", "hurts", "strech")
RED_FLAG = "sciatica down both legs now instead of just one, and weird numbness around my bum and groin"


# ---------------------------------------------------------------------------------------- engine


@dataclass
class RecordingEngine:
    """Wraps the real engine: records each message with its outcome; ``fail_on`` text raises."""

    inner: Any
    seen: list[tuple[IncomingMessage, Outcome]] = field(default_factory=list)
    fail_on: str = "boom please"

    async def handle(self, msg: IncomingMessage) -> Outcome:
        if msg.text == self.fail_on:
            raise RuntimeError("engine exploded")
        outcome = await self.inner.handle(msg)
        self.seen.append((msg, outcome))
        return outcome

    def texts(self) -> list[str]:
        return [m.text for m, _ in self.seen]

    @property
    def last(self) -> tuple[IncomingMessage, Outcome]:
        return self.seen[-1]


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return shipped_knowledge()


@pytest.fixture
async def runtime(
    tmp_path: Path, clock: ManualClock, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    # Knowledge is immutable, so one load serves every test (loading it takes ~0.5 s).
    monkeypatch.setattr(bootstrap, "load_knowledge", lambda path: knowledge)
    # the engine's flood control is its own concern (tested in core); here one user presses many buttons fast
    config = Settings(rate_limit=RateLimitSettings(enabled=False))
    rt = build_shipped(config, clock=clock, db_path=tmp_path / "runbot.db")
    async with rt:
        yield rt


@pytest.fixture
def engine(runtime: Runtime) -> RecordingEngine:
    return RecordingEngine(runtime.engine)


def _settings(api: FakeBotAPI, **overrides: Any) -> TelegramAdapterSettings:
    return TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}", **overrides)


@pytest.fixture
async def adapter(api: FakeBotAPI, engine: RecordingEngine, runtime: Runtime) -> AsyncIterator[TelegramAdapter]:
    tg = TelegramAdapter(engine, _settings(api, moderator_user_ids=(MODERATOR,)), api.token)
    runtime.add_adapter(tg)
    await tg.start()
    yield tg
    await tg.stop()
    assert api.unknown == []


def _public_and_private(outcome: Outcome) -> tuple[list[str], list[str]]:
    public = [r.text for r in outcome.replies if not r.private]
    private = [r.text for r in outcome.replies if r.private]
    return public, private


def _texts(messages: list[JSON]) -> list[str]:
    return [m["text"] for m in messages]


def _payloads(message: JSON) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]


async def _private_turn(api: FakeBotAPI, engine: RecordingEngine, user_id: int, text: str) -> list[JSON]:
    """Send a private message; wait until every reply the engine gave arrived; return those messages."""
    seen, before = len(engine.seen), len(api.sent(user_id))
    await api.send_text(user_id=user_id, text=text)
    await api.wait_for(lambda: len(engine.seen) > seen)
    return (await api.wait_sent(user_id, before + len(engine.last[1].replies)))[before:]


async def _private_press(
    api: FakeBotAPI, engine: RecordingEngine, user_id: int, message: JSON, data: str
) -> list[JSON]:
    assert data in _payloads(message), f"{data} is not a button on that message"
    seen, before = len(engine.seen), len(api.sent(user_id))
    await api.press(user_id=user_id, message=message, data=data)
    await api.wait_for(lambda: len(engine.seen) > seen)
    return (await api.wait_sent(user_id, before + len(engine.last[1].replies)))[before:]


async def _barrier(api: FakeBotAPI) -> None:
    """Updates are handled one at a time: once a later private message is answered, earlier ones were handled."""
    before = len(api.sent(OTHER))
    await api.send_text(user_id=OTHER, text="/help")
    await api.wait_sent(OTHER, before + 1)


def _path_to(flow: TriageFlow, wanted: Any) -> list[str]:
    """Payloads that walk the flow from its start to an outcome for which ``wanted(outcome)`` holds."""
    queue: deque[tuple[str, list[str]]] = deque([(flow.start, [])])
    visited = {flow.start}
    while queue:
        step_id, path = queue.popleft()
        for index, choice in enumerate(flow.steps[step_id].choices):
            payloads = [*path, triage_answer(step_id, index)]
            if choice.outcome is not None and wanted(flow.outcomes[choice.outcome]):
                return payloads
            if choice.next is not None and choice.next not in visited:
                visited.add(choice.next)
                queue.append((choice.next, payloads))
    raise AssertionError("no such path in the shipped triage flow")


# ---------------------------------------------------------------------------------------- pure helpers


def test_split_message_keeps_short_text_whole() -> None:
    assert split_message("short answer") == ["short answer"]
    assert split_message("   ") == []


def test_split_message_prefers_paragraph_boundaries() -> None:
    paragraphs = [f"para {i} " * 40 for i in range(12)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split_message(text, 1000)
    assert len(chunks) > 1
    assert all(utf16_len(c) <= 1000 for c in chunks)
    # every chunk is made of whole paragraphs
    originals = {p.strip() for p in paragraphs}
    for chunk in chunks:
        assert set(chunk.split("\n\n")) <= originals


def test_split_message_cuts_a_giant_word_and_counts_utf16() -> None:
    text = "🏃" * 3000  # 2 UTF-16 units each: 6000 units
    chunks = split_message(text, 4096)
    assert [utf16_len(c) for c in chunks] == [4096, 1904]
    assert "".join(chunks) == text


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab c\n🏃é")), max_size=600),
    st.integers(min_value=2, max_value=80),
)
def test_split_message_properties(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    assert all(0 < utf16_len(c) <= limit for c in chunks)
    # only whitespace at the cut points may disappear
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_parse_command_and_mentions() -> None:
    cmd = parse_command("/ask@Runbot_Test_Bot why does my back hurt")
    assert cmd is not None
    assert (cmd.name, cmd.args, cmd.is_for("runbot_test_bot"), cmd.is_for("other_bot")) == (
        "ask",
        "why does my back hurt",
        True,
        False,
    )
    assert parse_command("/start") == parse_command("/START ")
    assert parse_command("not /a command") is None
    assert strip_mention("@runbot_test_bot, should I stretch?", "runbot_test_bot") == (True, "should I stretch?")
    assert strip_mention("email me at x@runbot_test_bot.org", "runbot_test_bot")[0] is False
    assert strip_mention("@runbot_test_bot_fan hi", "runbot_test_bot")[0] is False


def test_api_urls_for_a_self_hosted_server() -> None:
    assert api_urls(None) == ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot")
    assert api_urls("http://10.0.0.5:8081/") == ("http://10.0.0.5:8081/bot", "http://10.0.0.5:8081/file/bot")
    assert api_urls("http://10.0.0.5:8081/bot")[0] == "http://10.0.0.5:8081/bot"


# ---------------------------------------------------------------------------------------- private chat


async def test_start_registers_commands_and_greets(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime
) -> None:
    await agree(runtime, str(USER), platform="telegram")  # the consent flow itself: test_consent_platforms.py
    [set_commands] = api.calls_to("setMyCommands")
    registered = [c["command"] for c in set_commands.params["commands"]]
    assert registered == [name for name, _ in COMMANDS]
    assert {"start", "help", "ask", "triage", "cancel", "followups", "mydata", "forget", "faq", "consent"} <= set(
        registered
    )

    sent = await _private_turn(api, engine, USER, "/start")
    msg, outcome = engine.last
    assert (msg.text, msg.is_private, msg.user_id, msg.chat_id, msg.platform) == (
        "/start",
        True,
        str(USER),
        str(USER),
        "telegram",
    )
    assert outcome.kind == "command"
    assert _texts(sent) == [r.text for r in outcome.replies]
    assert any("not medical advice" in r.text for r in outcome.replies)  # the notice is part of the greeting turn
    assert [_payloads(m) for m in sent] == [[c.payload for c in r.choices] for r in outcome.replies]

    # the deep link t.me/<bot>?start=triage arrives as "/start triage" and starts the check
    sent = await _private_turn(api, engine, USER, "/start triage")
    assert engine.last[0].text == "/start triage"
    assert engine.last[1].kind == "triage"
    assert any(button(p, "tri") for p in _payloads(sent[-1]))


async def test_private_question_is_answered(api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine) -> None:
    sent = await _private_turn(api, engine, USER, QUESTION)
    msg, outcome = engine.last
    assert msg.text == QUESTION
    assert (outcome.kind, outcome.faq_id) == ("answer", "back-pain-causes")
    assert _texts(sent) == [r.text for r in outcome.replies]
    assert all("parse_mode" not in c.params for c in api.calls_to("sendMessage"))  # plain text: nothing to escape

    # stopping confirms what was handled (a last getUpdates with timeout=0), so a restart won't answer it again
    await adapter.stop()
    final = [c.params for c in api.calls_to("getUpdates") if c.params["timeout"] == 0]
    assert final and final[-1]["offset"] == api.last_update_id + 1 == api.confirmed_offset


async def _vague_question(runtime: Runtime) -> str:
    for text in VAGUE:
        probe = IncomingMessage("telegram", "probe", "probe", text)
        if (await runtime.engine.handle(probe)).kind == "did-you-mean":
            return text
    raise AssertionError(f"none of {VAGUE} gets a 'did you mean' from the shipped knowledge")


async def test_did_you_mean_press_is_answered_then_keyboard_removed(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime
) -> None:
    sent = await _private_turn(api, engine, USER, await _vague_question(runtime))
    outcome = engine.last[1]
    assert outcome.kind == "did-you-mean"
    question = sent[-1]
    assert _payloads(question) == [c.payload for c in outcome.replies[-1].choices]
    assert len(_payloads(question)) >= 2

    picked = _payloads(question)[0]
    before = len(api.calls)
    sent = await _private_press(api, engine, USER, question, picked)
    msg, outcome = engine.last
    assert (msg.choice, msg.text) == (picked, "")
    assert (outcome.kind, outcome.faq_id) == ("answer", decode(picked).args[0])  # type: ignore[union-attr]
    assert _texts(sent) == [r.text for r in outcome.replies]

    methods = [c.method for c in api.calls[before:] if c.method != "getUpdates"]
    assert methods[:2] == ["answerCallbackQuery", "editMessageReplyMarkup"]  # acknowledged first
    assert methods[2:] == ["sendMessage"] * len(outcome.replies)
    assert "reply_markup" not in api.message(USER, question["message_id"])


async def test_triage_through_inline_keyboards_to_an_outcome(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime
) -> None:
    flow = runtime.knowledge.current.triage
    path = _path_to(flow, lambda o: o.disposition == "self-care")
    await agree(runtime, str(USER), platform="telegram")  # the consent flow itself: test_consent_platforms.py
    sent = await _private_turn(api, engine, USER, "/triage")
    for payload in path:
        assert engine.last[1].kind == "triage"
        sent = await _private_press(api, engine, USER, sent[-1], payload)
    final = engine.last[1]
    assert final.kind == "triage" and final.escalation is None
    assert _texts(sent) == [r.text for r in final.replies]
    assert len(api.calls_to("answerCallbackQuery")) == len(path)  # every press answered
    assert len(api.calls_to("editMessageReplyMarkup")) == len(path)  # every pressed keyboard removed
    assert all(m["chat"]["id"] == USER for m in api.sent())


async def test_forget(api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime) -> None:
    await _private_turn(api, engine, USER, "/followups off")  # a setting: the first thing stored about them
    assert await runtime.store.find_user("telegram", str(USER)) is not None
    sent = await _private_turn(api, engine, USER, "/forget")
    assert engine.last[0].text == "/forget"
    assert forget(True) in _payloads(sent[-1])
    sent = await _private_press(api, engine, USER, sent[-1], forget(True))
    assert engine.last[0].choice == forget(True)
    assert _texts(sent) == [r.text for r in engine.last[1].replies]
    assert await runtime.store.find_user("telegram", str(USER)) is None


# ---------------------------------------------------------------------------------------- groups


async def _group_say(api: FakeBotAPI, user_id: int, text: str, **kwargs: Any) -> JSON:
    return await api.send_text(user_id=user_id, chat_id=GROUP, chat_type="supergroup", text=text, **kwargs)


async def test_group_chatter_ignored_mention_and_reply_answered(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine
) -> None:
    await _group_say(api, USER, QUESTION)  # not addressed to the bot
    await _group_say(api, USER, f"/ask@other_bot {QUESTION}")  # addressed to another bot
    await _barrier(api)
    assert api.sent(GROUP) == []
    assert engine.texts() == ["/help"]

    asked = await _group_say(api, USER, f"@{BOT} {QUESTION}")
    await api.wait_for(lambda: len(engine.seen) == 2)
    msg, outcome = engine.last
    assert (msg.text, msg.is_private, msg.chat_id, msg.user_id) == (QUESTION, False, str(GROUP), str(USER))
    assert outcome.kind == "answer"
    public, private = _public_and_private(outcome)
    assert _texts(await api.wait_sent(GROUP, len(public))) == public
    assert _texts(await api.wait_sent(USER, len(private))) == private  # e.g. the first-time notice
    quoting = [c for c in api.calls_to("sendMessage") if c.params["chat_id"] == GROUP]
    assert quoting[0].params["reply_parameters"]["message_id"] == asked["message_id"]

    answer = api.sent(GROUP)[-1]
    await _group_say(api, OTHER, "what about before a run?", reply_to_message_id=answer["message_id"])
    await api.wait_for(lambda: len(engine.seen) == 3)
    assert engine.last[0].text == "what about before a run?"
    assert engine.last[0].user_id == str(OTHER)


async def test_answers_stay_in_the_forum_topic(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine
) -> None:
    await _group_say(api, USER, f"/ask {QUESTION}", thread_id=77)
    await api.wait_for(lambda: len(engine.seen) == 1)
    public, _ = _public_and_private(engine.last[1])
    await api.wait_sent(GROUP, len(public))
    group_calls = [c for c in api.calls_to("sendMessage") if c.params["chat_id"] == GROUP]
    assert [c.params["message_thread_id"] for c in group_calls] == [77] * len(public)
    assert all("message_thread_id" not in c.params for c in api.calls_to("sendMessage") if c.params["chat_id"] == USER)


async def test_red_flag_in_group_public_safe_reply_and_private_details(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine
) -> None:
    await _group_say(api, USER, f"@{BOT} {RED_FLAG}")
    await api.wait_for(lambda: len(engine.seen) == 1)
    outcome = engine.last[1]
    assert outcome.kind == "escalation" and outcome.escalation is not None
    assert outcome.escalation.level == "emergency"
    public, private = _public_and_private(outcome)
    assert public and private
    group_texts = _texts(await api.wait_sent(GROUP, len(public)))
    assert group_texts == public
    assert _texts(await api.wait_sent(USER, len(private))) == private
    for text in group_texts:  # nothing the runner described is repeated in the group
        assert not {"groin", "bum", "numbness", "sciatica"} & set(text.lower().split())


async def test_group_private_reply_falls_back_to_a_deep_link(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime
) -> None:
    await agree(runtime, str(USER), platform="telegram")  # the consent flow itself: test_consent_platforms.py
    api.blocked_chats.add(USER)  # the runner never pressed Start in the bot's private chat
    await _group_say(api, USER, f"/triage@{BOT}")
    [note] = await api.wait_sent(GROUP, 1)
    outcome = engine.last[1]
    assert outcome.kind == "triage" and all(r.private for r in outcome.replies)
    assert f"https://t.me/{BOT}?start=triage" in note["text"]
    assert all(r.text not in note["text"] for r in outcome.replies)  # no health details in the group
    assert api.sent(USER) == []

    api.blocked_chats.clear()  # they pressed the link: Start, then the check begins in private
    sent = await _private_turn(api, engine, USER, "/start triage")
    assert engine.last[1].kind == "triage"
    assert any(button(p, "tri") for p in _payloads(sent[-1]))

    await _group_say(api, USER, "/mydata")
    await api.wait_sent(GROUP, 2)
    assert api.sent(GROUP)[-1]["text"] == SENT_PRIVATELY
    assert all(r.private for r in engine.last[1].replies)
    assert api.sent(USER)[-1]["text"] == engine.last[1].replies[-1].text


async def test_moderator_commands_need_permission(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine
) -> None:
    api.chat_admins[GROUP] = {OTHER: "administrator"}
    await _group_say(api, USER, "/faq stats")  # a member
    await _group_say(api, OTHER, f"/faq@{BOT} stats")  # a group admin: no moderators' chat configured, so no
    await api.send_text(user_id=MODERATOR, text="/faq stats")  # listed in moderator_user_ids
    await api.send_text(user_id=USER, text="/faq unanswered")  # private chat, not a moderator
    await api.wait_for(lambda: len(engine.seen) == 4)
    # chats are handled concurrently, in order within a chat
    assert sorted((m.user_id, m.text, m.is_moderator) for m, _ in engine.seen) == sorted([
        (str(USER), "/faq stats", False),
        (str(OTHER), "/faq stats", False),
        (str(MODERATOR), "/faq stats", True),
        (str(USER), "/faq unanswered", False),
    ])
    refused = {o.replies[-1].text for m, o in engine.seen if not m.is_moderator}
    granted = {o.replies[-1].text for m, o in engine.seen if m.is_moderator}
    assert len(refused) == 1 and not refused & granted
    assert api.calls_to("getChatMember") == []  # without moderator_chat_id no group's admins are asked about


async def test_reload_problems_reach_the_moderators_chat(
    api: FakeBotAPI, engine: RecordingEngine, adapter: TelegramAdapter
) -> None:
    assert await adapter.notify_moderators("faq.yaml:3: bad indentation") is False  # no moderators' chat configured
    tg = TelegramAdapter(engine, _settings(api, moderator_chat_id=GROUP), api.token)
    await tg.start()
    try:
        assert await tg.notify_moderators("faq.yaml:3: bad indentation") is True
        assert _texts(api.sent(GROUP)) == ["faq.yaml:3: bad indentation"]
        api.blocked_chats.add(GROUP)  # the bot was removed from that group
        assert await tg.notify_moderators("again") is False
    finally:
        await tg.stop()


def test_settings_from_config_reads_the_secret_from_the_environment() -> None:
    section = TelegramSettings(mode="webhook", webhook_url="https://bot.example.org/tg", moderator_user_ids=(7,))
    mapped = settings_from_config(section, {"TELEGRAM_WEBHOOK_SECRET": "abc_DEF-1"})
    assert (mapped.mode, mapped.webhook_url, mapped.webhook_secret, mapped.moderator_user_ids) == (
        "webhook",
        "https://bot.example.org/tg",
        "abc_DEF-1",
        (7,),
    )
    assert "abc_DEF-1" not in repr(mapped)
    assert settings_from_config(section, {}).webhook_secret is None


# ---------------------------------------------------------------------------------------- sending


async def test_followup_sent_by_the_scheduler_and_cancelled_when_blocked(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, runtime: Runtime, clock: ManualClock
) -> None:
    flow = runtime.knowledge.current.triage
    path = _path_to(flow, lambda o: o.followup and o.disposition in ("self-care", "see-professional"))
    await agree(runtime, str(USER), platform="telegram")  # the consent flow itself: test_consent_platforms.py
    sent = await _private_turn(api, engine, USER, "/triage")
    for payload in path:
        sent = await _private_press(api, engine, USER, sent[-1], payload)
    offer = next(m for m in sent if any(button(p, "fu", "yes") for p in _payloads(m)))
    yes = next(p for p in _payloads(offer) if button(p, "fu", "yes"))
    await _private_press(api, engine, USER, offer, yes)
    assert engine.last[1].kind == "followup"

    before = len(api.sent(USER))
    assert await runtime.scheduler.run_due() == 0  # not due yet
    clock.advance(days=runtime.settings.followups.first_after_days, minutes=1)
    assert await runtime.scheduler.run_due() == 1
    [checkin] = api.sent(USER)[before:]
    assert {"Better", "Same", "Worse"} <= {b["text"] for row in checkin["reply_markup"]["inline_keyboard"] for b in row}

    same = next(p for p in _payloads(checkin) if p.endswith(":same"))
    sent = await _private_press(api, engine, USER, checkin, same)  # asks to be checked on again later
    assert engine.last[1].kind == "followup"
    user = await runtime.store.get_or_create_user("telegram", str(USER))
    assert await runtime.store.user_followups(user, active_only=True)

    api.blocked_chats.add(USER)  # the runner blocked the bot: 403 on the next check-in
    clock.advance(days=runtime.settings.followups.interval_days, minutes=1)
    assert await runtime.scheduler.run_due() == 0
    assert await runtime.store.user_followups(user, active_only=True) == []


async def test_send_to_a_blocked_user_is_a_permanent_delivery_error(api: FakeBotAPI, adapter: TelegramAdapter) -> None:
    await adapter.send(ChatRef("telegram", str(USER), str(GROUP)), [Reply("How is your back today?")])
    [checkin] = api.sent(USER)  # always the private chat, even if the ref came from a group
    assert checkin["text"] == "How is your back today?"
    api.blocked_chats.add(USER)
    with pytest.raises(DeliveryError) as blocked:
        await adapter.send(ChatRef("telegram", str(USER), str(USER)), [Reply("Still there?")])
    assert blocked.value.permanent is True


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # raised inside PTB's RetryAfter
async def test_long_reply_split_with_keyboard_on_last_part_and_flood_wait_retried(
    api: FakeBotAPI, adapter: TelegramAdapter
) -> None:
    paragraphs = [(f"Paragraph {i}. " + "Easy running builds tolerance. " * 30).strip() for i in range(10)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 4096
    api.flood_once["sendMessage"] = 1
    await adapter.send(ChatRef("telegram", str(USER), str(USER)), [Reply(text, choices=(Choice("OK", "ack"),))])
    sent = api.sent(USER)
    assert len(sent) > 1
    assert all(len(m["text"]) <= 4096 for m in sent)
    assert all(set(m["text"].split("\n\n")) <= set(paragraphs) for m in sent)  # cut at paragraph boundaries
    assert "\n\n".join(_texts(sent)) == text
    assert all("reply_markup" not in m for m in sent[:-1])
    assert _payloads(sent[-1]) == ["ack"]
    assert len(api.calls_to("sendMessage")) == len(sent) + 1  # the 429 was waited out and retried


async def test_engine_error_is_logged_and_the_bot_keeps_going(
    api: FakeBotAPI, adapter: TelegramAdapter, engine: RecordingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.adapters.telegram_adapter"):
        await api.send_text(user_id=USER, text=engine.fail_on)
        [apology] = await api.wait_sent(USER, 1)
    assert "went wrong" in apology["text"]
    assert any(r.exc_info and "engine exploded" in str(r.exc_info[1]) for r in caplog.records)
    await _private_turn(api, engine, USER, QUESTION)
    assert engine.last[1].kind == "answer"


# ---------------------------------------------------------------------------------------- startup


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_wrong_token_is_a_clear_one_line_error(api: FakeBotAPI, engine: RecordingEngine) -> None:
    token = "999999:WRONG-secret-token"
    tg = TelegramAdapter(engine, _settings(api), token)
    with pytest.raises(StartupError) as err:
        await tg.start()
    message = str(err.value)
    assert "token" in message and "TELEGRAM_TOKEN" in message
    assert token not in message and "\n" not in message
    assert api.bad_token_calls == 1
    await tg.stop()  # harmless after a failed start


async def test_unreachable_api_is_a_clear_one_line_error(engine: RecordingEngine) -> None:
    port = _free_port()  # nothing listens there
    tg = TelegramAdapter(engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{port}"), "123:abc")
    with pytest.raises(StartupError) as err:
        await tg.start()
    assert f"127.0.0.1:{port}" in str(err.value) and "123:abc" not in str(err.value)


async def test_webhook_mode_needs_a_secret(api: FakeBotAPI, engine: RecordingEngine) -> None:
    tg = TelegramAdapter(engine, _settings(api, mode="webhook", webhook_url="https://example.org/tg"), api.token)
    with pytest.raises(StartupError, match="TELEGRAM_WEBHOOK_SECRET"):
        await tg.start()
    assert api.calls == []


async def test_webhook_refused_by_telegram_is_a_clear_error(api: FakeBotAPI, engine: RecordingEngine) -> None:
    api.failing["setWebhook"] = (400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
    port = _free_port()
    config = _settings(
        api, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/hook", webhook_port=port, webhook_secret="abc"
    )
    tg = TelegramAdapter(engine, config, api.token)
    with pytest.raises(StartupError, match=r"(?i)https url must be provided"):
        await tg.start()
    with socket.socket() as sock:  # nothing is left listening on the port
        sock.bind(("127.0.0.1", port))


async def test_webhook_rejects_updates_without_the_secret(api: FakeBotAPI, engine: RecordingEngine) -> None:
    port, secret = _free_port(), "s3cret-Token_value"
    url = f"http://127.0.0.1:{port}/telegram-hook"
    settings_ = _settings(
        api, mode="webhook", webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port, webhook_secret=secret
    )
    assert secret not in repr(settings_)
    tg = TelegramAdapter(engine, settings_, api.token)
    await tg.start()
    try:
        [set_webhook] = api.calls_to("setWebhook")
        assert (set_webhook.params["url"], set_webhook.params["secret_token"]) == (url, secret)
        assert api.calls_to("getUpdates") == []

        def update(update_id: int) -> JSON:
            return {"update_id": update_id, "message": api.build_message(user_id=USER, text=QUESTION)}

        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update(1)) as missing:
                assert missing.status == 403
            async with http.post(url, json=update(2), headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as wrong:
                assert wrong.status == 403
            async with http.post(url, json=update(3), headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as good:
                assert good.status == 200
        await api.wait_for(lambda: len(engine.seen) == 1)
        assert engine.last[0].text == QUESTION and engine.last[1].kind == "answer"
        assert _texts(await api.wait_sent(USER, len(engine.last[1].replies))) == [
            r.text for r in engine.last[1].replies
        ]
        assert len(engine.seen) == 1  # the two rejected updates never reached the engine
    finally:
        await tg.stop()
    assert api.unknown == []
