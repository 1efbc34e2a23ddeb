"""The check tier (a possible red flag -> one yes/no safety question) through the real platform clients.

python-telegram-bot and discord.py run against the fake servers in ``fake_telegram`` / ``fake_discord`` with the real
engine on the shipped knowledge (SQLite in tmp_path). The engine side of the two tiers is in
tests/core/test_safety_tiers.py; here we check what each platform actually shows, and where:

* private chat / DM: the question with Yes / No buttons; Yes -> that category's escalation, No -> the original message
  answered as usual, typed "yes" works too;
* a group / server message addressed to the bot: the question goes privately (Telegram: the user's private chat plus
  the adapter's content-free "I've sent you a private message." note in the group; Discord: a DM, or only the
  "DMs closed" note in the channel), never the question itself in public;
* not addressed (a Telegram group, a Discord listen channel): nothing is posted for a possible hit; in a listen
  channel the alarm tier still gets its public short line with the details by DM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import build_shipped, button, shipped_knowledge

from bot import bootstrap
from bot.adapters.discord_adapter import DMS_CLOSED_NOTE
from bot.adapters.telegram_adapter import SENT_PRIVATELY, TelegramAdapter
from bot.bootstrap import Runtime
from bot.config import RateLimitSettings, Settings
from bot.core.knowledge import Knowledge
from bot.core.messages import Outcome
from bot.core.payloads import check_no, check_yes
from bot.core.ports import ManualClock
from bot.core.replies import SAFETY_CHECK_CARRY_ON
from tests.adapters import test_discord as dc
from tests.adapters import test_telegram as tg
from tests.adapters.fake_discord import Sent
from tests.adapters.fake_telegram import JSON, FakeBotAPI

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"
#: check tier (`runbot explain`), cauda-equina; the FAQ has no confident answer for either
EREC = "having a bit of trouble with erections since my back went"
PEE_IF = "what would happen if i couldnt pee after hurting my back?"
#: check tier, rhabdo; with "No" the question is answered as usual (the FAQ entry below)
WITH_QUESTION = "why does my lower back hurt after running? my wee has gone a rusty orange colour"
WITH_QUESTION_FAQ = "back-pain-causes"
#: alarm tier, cauda-equina (the Discord adapter tests' red flag)
ALARM = dc.RED_FLAG


# ---------------------------------------------------------------------------------------- shared


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return shipped_knowledge()


@pytest.fixture
async def runtime(tmp_path: Path, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    """The real engine and store, flood control off (many presses a second), knowledge loaded once per module."""
    monkeypatch.setattr(bootstrap, "load_knowledge", lambda path: knowledge)
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    async with build_shipped(settings, clock=ManualClock(), db_path=tmp_path / "runbot.db") as rt:
        yield rt


def check_category(k: Knowledge, text: str) -> str:
    """The category ``text`` gets a safety question for (fails loudly if the knowledge no longer says 'check')."""
    found = k.red_flags.assess(text)
    assert not found.alarms and found.checks, f"{text!r} is no longer check-tier: {k.red_flags.explain(text)}"
    return found.checks[0].category


def yes_no(category: str) -> list[str]:
    return [check_yes(category), check_no()]


def test_the_sample_messages_are_in_the_tiers_these_tests_assume(knowledge: Knowledge) -> None:
    assert check_category(knowledge, EREC) == check_category(knowledge, PEE_IF) == "cauda-equina"
    assert check_category(knowledge, WITH_QUESTION) == "rhabdo"
    assert [a.category for a in knowledge.red_flags.assess(ALARM).alarms][:1] == ["cauda-equina"]


# ---------------------------------------------------------------------------------------- Telegram


@pytest.fixture
def tg_engine(runtime: Runtime) -> tg.RecordingEngine:
    return tg.RecordingEngine(runtime.engine)


@pytest.fixture
async def telegram(api: FakeBotAPI, tg_engine: tg.RecordingEngine, runtime: Runtime) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(tg_engine, tg._settings(api), api.token)
    runtime.add_adapter(adapter)
    await adapter.start()
    yield adapter
    await adapter.stop()
    assert api.unknown == []


def _labels(message: JSON) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def _assert_telegram_question(message: JSON, outcome: Outcome, category: str) -> None:
    assert outcome.kind == "safety-check" and outcome.escalation is None
    assert outcome.safety_check is not None and outcome.safety_check.category == category
    assert outcome.safety_check.question in message["text"]
    assert tg._payloads(message) == yes_no(category)
    assert _labels(message) == ["Yes", "No"]


async def test_telegram_private_check_question_then_yes_button_escalates(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    category = check_category(knowledge, EREC)
    [question] = await tg._private_turn(api, tg_engine, tg.USER, EREC)
    msg, outcome = tg_engine.last
    assert (msg.text, msg.is_private) == (EREC, True)
    _assert_telegram_question(question, outcome, category)
    assert [r.private for r in outcome.replies] == [False]  # a private chat is already private

    before = len(api.calls)
    sent = await tg._private_press(api, tg_engine, tg.USER, question, check_yes(category))
    msg, outcome = tg_engine.last
    assert (msg.choice, msg.is_private) == (check_yes(category), True)
    assert outcome.kind == "escalation" and outcome.escalation is not None
    assert (outcome.escalation.category, outcome.escalation.level) == (category, "emergency")
    assert tg._texts(sent) == [r.text for r in outcome.replies]
    assert knowledge.red_flags.categories[category].message[:80] in sent[0]["text"]  # the category's own advice
    methods = [c.method for c in api.calls[before:] if c.method != "getUpdates"]
    assert methods[:2] == ["answerCallbackQuery", "editMessageReplyMarkup"]  # the button stops spinning first
    assert "reply_markup" not in api.message(tg.USER, question["message_id"])  # the question can't be answered twice


async def test_telegram_private_no_button_answers_the_original_message(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    category = check_category(knowledge, WITH_QUESTION)
    [question] = await tg._private_turn(api, tg_engine, tg.USER, WITH_QUESTION)
    _assert_telegram_question(question, tg_engine.last[1], category)

    sent = await tg._private_press(api, tg_engine, tg.USER, question, check_no())
    msg, outcome = tg_engine.last
    assert msg.choice == check_no()
    assert outcome.escalation is None and outcome.kind == "answer" and outcome.faq_id == WITH_QUESTION_FAQ
    assert tg._texts(sent) == [r.text for r in outcome.replies]
    assert sent[0]["text"] == SAFETY_CHECK_CARRY_ON
    assert knowledge.entries[WITH_QUESTION_FAQ].answer.split("\n")[0][:60] in sent[-1]["text"]

    # another possible hit, another question; "No" carries on with that message (no confident answer: not an alarm)
    [question] = await tg._private_turn(api, tg_engine, tg.USER, EREC)
    _assert_telegram_question(question, tg_engine.last[1], check_category(knowledge, EREC))
    sent = await tg._private_press(api, tg_engine, tg.USER, question, check_no())
    outcome = tg_engine.last[1]
    assert outcome.escalation is None and outcome.kind not in ("safety-check", "escalation", "expired")
    assert tg._texts(sent) == [r.text for r in outcome.replies] and sent[0]["text"] == SAFETY_CHECK_CARRY_ON


async def test_telegram_private_typed_yes_escalates(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    category = check_category(knowledge, PEE_IF)
    [question] = await tg._private_turn(api, tg_engine, tg.USER, PEE_IF)
    _assert_telegram_question(question, tg_engine.last[1], category)
    sent = await tg._private_turn(api, tg_engine, tg.USER, "Yes")
    msg, outcome = tg_engine.last
    assert (msg.text, msg.choice) == ("Yes", None)
    assert outcome.escalation is not None and outcome.escalation.category == category
    assert tg._texts(sent) == [r.text for r in outcome.replies]
    assert all(r.escalation is not None and not r.private for r in outcome.replies)


async def test_telegram_group_addressed_check_goes_privately_with_a_content_free_note(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    category = check_category(knowledge, EREC)
    asked = await tg._group_say(api, tg.USER, f"@{tg.BOT} {EREC}")
    await api.wait_for(lambda: len(tg_engine.seen) == 1)
    msg, outcome = tg_engine.last
    assert (msg.text, msg.is_private, msg.chat_id) == (EREC, False, str(tg.GROUP))
    assert outcome.replies and all(r.private for r in outcome.replies)
    [question] = await api.wait_sent(tg.USER, 1)  # the user's private chat
    _assert_telegram_question(question, outcome, category)

    # What the group sees is the adapter's note for private-only replies: no symptom words, no question, no buttons.
    [note] = await api.wait_sent(tg.GROUP, 1)
    assert note["text"] == SENT_PRIVATELY and "reply_markup" not in note
    assert note["reply_to_message"]["message_id"] == asked["message_id"]

    # Yes in the private chat: the full escalation there; nothing more in the group
    sent = await tg._private_press(api, tg_engine, tg.USER, question, check_yes(category))
    msg, outcome = tg_engine.last
    assert msg.is_private and outcome.escalation is not None and outcome.escalation.category == category
    assert tg._texts(sent) == [r.text for r in outcome.replies]
    await tg._barrier(api)
    assert tg._texts(api.sent(tg.GROUP)) == [SENT_PRIVATELY]


async def test_telegram_group_check_when_the_private_chat_is_closed_posts_only_the_start_link(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    api.blocked_chats.add(tg.USER)  # never pressed Start in the bot's private chat
    await tg._group_say(api, tg.USER, f"@{tg.BOT} {PEE_IF}")
    [note] = await api.wait_sent(tg.GROUP, 1)
    outcome = tg_engine.last[1]
    assert outcome.kind == "safety-check" and outcome.safety_check is not None
    assert f"https://t.me/{tg.BOT}?start=" in note["text"] and "reply_markup" not in note
    assert outcome.safety_check.question not in note["text"] and "pee" not in note["text"].lower()
    assert api.sent(tg.USER) == []


async def test_telegram_group_unaddressed_possible_hits_post_nothing(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine
) -> None:
    await tg._group_say(api, tg.USER, EREC)
    await tg._group_say(api, tg.USER, PEE_IF)
    await tg._barrier(api)  # /help from OTHER in private, answered after both group messages were handled
    assert tg_engine.texts() == ["/help"]  # not addressed: the engine never saw them
    assert api.sent(tg.GROUP) == [] and api.sent(tg.USER) == []


async def test_telegram_group_ask_command_with_a_possible_hit_gets_the_question_privately(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    await tg._group_say(api, tg.USER, f"/ask@{tg.BOT} {EREC}")
    await api.wait_for(lambda: len(tg_engine.seen) == 1)
    outcome = tg_engine.last[1]
    assert outcome.kind == "safety-check"
    [question] = await api.wait_sent(tg.USER, 1)
    _assert_telegram_question(question, outcome, check_category(knowledge, EREC))
    assert tg._texts(await api.wait_sent(tg.GROUP, 1)) == [SENT_PRIVATELY]


# ---------------------------------------------------------------------------------------- Discord


@pytest.fixture
async def env(runtime: Runtime) -> AsyncIterator[dc.Env]:
    async with dc.running(runtime.engine) as e:
        runtime.add_adapter(e.adapter)
        yield e
        assert e.errors == []


def _assert_discord_question(message: Sent, outcome: Outcome, category: str) -> None:
    assert outcome.kind == "safety-check" and outcome.safety_check is not None
    assert outcome.safety_check.category == category
    assert outcome.safety_check.question in message.content
    assert [b["custom_id"] for b in message.buttons] == yes_no(category)
    assert [b["label"] for b in message.buttons] == ["Yes", "No"]


def _opened_dms(e: dc.Env) -> int:
    return sum(1 for method, path, _ in e.fake.requests if method == "POST" and path.endswith("/users/@me/channels"))


async def test_discord_listen_channel_possible_hit_posts_nothing_and_asks_nothing(
    env: dc.Env, runtime: Runtime
) -> None:
    for n, text in enumerate((EREC, PEE_IF), start=1):
        await env.fake.message(env.alice, text, channel_id=env.listen_channel)
        msg, outcome = await dc._next_call(env, n)
        assert msg.listen_only and msg.text == text
        assert (outcome.kind, outcome.replies, outcome.safety_check) == ("silent", (), None)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 2)
    assert env.fake.sent == [] and _opened_dms(env) == 0  # nothing public, and no DM either
    assert not runtime.engine.safety.waiting(f"discord:{env.alice.id}")  # no question left open for a later "yes"

    # a confident FAQ question with a possible hit in it: the usual listen-channel answer, no safety question
    await env.fake.message(env.alice, WITH_QUESTION, channel_id=env.listen_channel)
    _, outcome = await dc._next_call(env, 3)
    assert (outcome.kind, outcome.faq_id, outcome.safety_check) == ("answer", WITH_QUESTION_FAQ, None)
    [answer] = await env.fake.wait_sent(1)
    assert answer.channel_id == env.listen_channel and answer.content == outcome.replies[0].text
    assert not any(button(b["custom_id"], "chk") for b in answer.buttons)  # related-FAQ buttons only
    assert not any(s.content.startswith("Before I answer") for s in env.fake.sent)
    assert not runtime.engine.safety.waiting(f"discord:{env.alice.id}")


async def test_discord_listen_channel_alarm_posts_the_short_line_and_dms_the_details(env: dc.Env) -> None:
    await env.fake.message(env.alice, ALARM, channel_id=env.listen_channel)
    msg, outcome = await dc._next_call(env, 1)
    assert msg.listen_only
    assert outcome.kind == "escalation" and outcome.escalation is not None
    assert outcome.escalation.level == "emergency"
    public = [r for r in outcome.replies if not r.private]
    private = [r for r in outcome.replies if r.private]
    assert public and private
    sent = await env.fake.wait_sent(len(outcome.replies))
    assert [s.content for s in sent if s.channel_id == env.listen_channel] == dc.texts(public)
    assert [s.content for s in sent if s.dm_user_id == env.alice.id] == dc.texts(private)
    for s in sent:
        if s.channel_id == env.listen_channel:  # nothing the runner described is repeated in public
            assert not {"groin", "bum", "wet", "numbness"} & set(s.content.lower().split())


async def test_discord_mention_gets_the_question_by_dm_and_yes_escalates_there(
    env: dc.Env, knowledge: Knowledge
) -> None:
    category = check_category(knowledge, EREC)
    await env.fake.message(env.alice, EREC, channel_id=env.channel, mention_bot=True)
    msg, outcome = await dc._next_call(env, 1)
    assert (msg.text, msg.is_private, msg.listen_only) == (EREC, False, False)
    assert outcome.replies and all(r.private for r in outcome.replies)
    [question] = await env.fake.wait_sent(1)
    assert question.dm_user_id == env.alice.id and question.via == "channel"
    _assert_discord_question(question, outcome, category)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 1)
    assert [s for s in env.fake.sent if s.channel_id == env.channel] == []  # nothing in the server channel

    mark = env.fake.mark()
    token = await env.fake.click(env.alice, question, check_yes(category))
    msg, outcome = await dc._next_call(env, 2)
    assert (msg.choice, msg.is_private) == (check_yes(category), True)
    assert outcome.escalation is not None and outcome.escalation.category == category
    sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert [s.content for s in sent] == dc.texts(outcome.replies)
    assert all(s.via == "followup" and s.dm_user_id == env.alice.id for s in sent)  # the interaction's answer, in DM
    assert env.fake.interactions[token].callbacks[0]["type"] == 6  # acknowledged before the engine ran
    edited = [body for mid, body in env.fake.edits if mid == question.id]
    buttons = [b for row in edited[-1]["components"] for b in row["components"]]
    assert [b["disabled"] for b in buttons] == [True, True]


async def test_discord_dm_question_then_no_answers_the_original_message(env: dc.Env, knowledge: Knowledge) -> None:
    category = check_category(knowledge, WITH_QUESTION)
    [question] = await env.ask_dm(env.alice, WITH_QUESTION)
    _assert_discord_question(question, env.engine.last()[1], category)
    assert question.dm_user_id == env.alice.id

    mark = env.fake.mark()
    await env.fake.click(env.alice, question, check_no())
    msg, outcome = await dc._next_call(env, 2)
    assert msg.choice == check_no()
    assert outcome.escalation is None and (outcome.kind, outcome.faq_id) == ("answer", WITH_QUESTION_FAQ)
    sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert [s.content for s in sent] == dc.texts(outcome.replies)
    assert sent[0].content == SAFETY_CHECK_CARRY_ON and all(s.private for s in sent)


async def test_discord_dm_typed_yes_escalates(env: dc.Env, knowledge: Knowledge) -> None:
    category = check_category(knowledge, PEE_IF)
    [question] = await env.ask_dm(env.alice, PEE_IF)
    _assert_discord_question(question, env.engine.last()[1], category)
    sent = await env.ask_dm(env.alice, "yes")
    outcome = env.engine.last()[1]
    assert outcome.escalation is not None and outcome.escalation.category == category
    assert [s.content for s in sent] == dc.texts(outcome.replies) and all(s.dm_user_id for s in sent)


async def test_discord_mention_with_dms_closed_leaves_only_the_note(env: dc.Env, knowledge: Knowledge) -> None:
    env.alice.dms_closed = True
    await env.fake.message(env.alice, PEE_IF, channel_id=env.channel, mention_bot=True)
    _, outcome = await dc._next_call(env, 1)
    assert outcome.kind == "safety-check" and outcome.safety_check is not None
    [note] = await env.fake.wait_sent(1)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 1)
    assert [s.content for s in env.fake.sent] == [DMS_CLOSED_NOTE]
    assert note.channel_id == env.channel and note.buttons == []
    assert outcome.safety_check.question not in note.content


async def test_discord_ephemeral_question_yes_escalates_ephemerally(runtime: Runtime, knowledge: Knowledge) -> None:
    category = check_category(knowledge, EREC)
    async with dc.running(runtime.engine) as e:
        token = await e.fake.slash(e.alice, "ask", channel_id=e.channel, options={"question": EREC})
        msg, outcome = await dc._next_call(e, 1)
        assert (msg.text, msg.is_private) == (f"/ask {EREC}", False)
        [question] = await e.fake.wait_sent(1)
        assert question.ephemeral and question.channel_id == e.channel
        _assert_discord_question(question, outcome, category)
        assert e.fake.interactions[token].original_id in e.fake.deleted  # the public "thinking…" placeholder is gone

        mark = e.fake.mark()
        click = await e.fake.click(e.alice, question, check_yes(category))
        msg, outcome = await dc._next_call(e, 2)
        assert (msg.choice, msg.is_private) == (check_yes(category), False)
        assert outcome.escalation is not None and outcome.escalation.category == category
        assert any(not r.private for r in outcome.replies)  # the engine offers a public line for a server...
        sent = await e.fake.wait_sent(len(outcome.replies), since=mark)
        assert [s.content for s in sent] == dc.texts(outcome.replies)
        assert all(s.ephemeral and s.via == "followup" for s in sent)  # ...but an ephemeral question stays ephemeral
        assert e.fake.interactions[click].callbacks[0]["type"] == 6
        assert e.errors == []


async def test_discord_ask_command_with_a_possible_hit_gets_an_ephemeral_question(
    env: dc.Env, knowledge: Knowledge
) -> None:
    await env.fake.slash(env.alice, "ask", channel_id=env.channel, options={"question": EREC})
    _, outcome = await dc._next_call(env, 1)
    assert outcome.kind == "safety-check"
    [question] = await env.fake.wait_sent(1)
    assert question.ephemeral
    _assert_discord_question(question, outcome, check_category(knowledge, EREC))


# ------------------------------------------------------------- an urgent alarm, then the graver question

#: alarm tier, infection (urgent); "peeing feels a bit odd" asks the cauda-equina question after it
URGENT_AND_GRAVER = "had a fever of 38.5 since yesterday with this back pain, and peeing feels a bit odd"


def test_the_urgent_sample_carries_a_graver_question(knowledge: Knowledge) -> None:
    found = knowledge.red_flags.assess(URGENT_AND_GRAVER)
    assert found.escalation is not None and found.escalation.level == "urgent"
    assert found.also_ask is not None and found.also_ask.level == "emergency"


async def test_telegram_group_alarm_goes_public_short_and_the_graver_question_privately(
    api: FakeBotAPI, telegram: TelegramAdapter, tg_engine: tg.RecordingEngine, knowledge: Knowledge
) -> None:
    graver = knowledge.red_flags.assess(URGENT_AND_GRAVER).also_ask
    assert graver is not None
    await tg._group_say(api, tg.USER, f"@{tg.BOT} {URGENT_AND_GRAVER}")
    await api.wait_for(lambda: len(tg_engine.seen) == 1)
    _, outcome = tg_engine.last
    assert outcome.escalation is not None and outcome.safety_check is not None
    public = [r for r in outcome.replies if not r.private]
    private = [r for r in outcome.replies if r.private]
    assert len(public) == 1 and not public[0].choices  # the short line, no question in the group
    in_group = await api.wait_sent(tg.GROUP, 1)
    assert tg._texts(in_group)[0] == public[0].text
    assert "pee" not in in_group[0]["text"].lower()
    sent = await api.wait_sent(tg.USER, len(private))
    assert tg._texts(sent) == [r.text for r in private]
    question = sent[-1]
    assert outcome.safety_check.question in question["text"]
    assert tg._payloads(question) == yes_no(graver.category)

    pressed = await tg._private_press(api, tg_engine, tg.USER, question, check_yes(graver.category))
    _, outcome = tg_engine.last
    assert outcome.escalation is not None and outcome.escalation.level == "emergency"
    assert tg._texts(pressed) == [r.text for r in outcome.replies]


async def test_discord_dm_alarm_then_the_graver_question_and_no_keeps_the_advice(
    env: dc.Env, knowledge: Knowledge
) -> None:
    graver = knowledge.red_flags.assess(URGENT_AND_GRAVER).also_ask
    assert graver is not None
    sent = await env.ask_dm(env.alice, URGENT_AND_GRAVER)
    _, outcome = env.engine.last()
    assert outcome.escalation is not None and outcome.escalation.level == "urgent"
    assert [s.content for s in sent] == dc.texts(outcome.replies)
    question = sent[-1]
    assert [b["custom_id"] for b in question.buttons] == yes_no(graver.category)
    assert not any(s.buttons for s in sent[:-1])  # the alarm itself has no buttons

    mark = env.fake.mark()
    await env.fake.click(env.alice, question, check_no())
    _, outcome = await dc._next_call(env, 2)
    assert outcome.escalation is None and outcome.faq_id is None
    answered = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert [s.content for s in answered] == dc.texts(outcome.replies)
    assert "advice above still stands" in answered[0].content
