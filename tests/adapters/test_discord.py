"""The Discord adapter driven through the real discord.py client against a fake Discord on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import button, real_runtime, vague_questions

from bot.adapters.discord_adapter import (
    DMS_CLOSED_NOTE,
    NOT_A_MODERATOR,
    DiscordAdapter,
    DiscordAdapterSettings,
    EngineLike,
    StartupError,
    split_message,
)
from bot.bootstrap import Runtime
from bot.core.messages import ChatRef, Choice, IncomingMessage, Outcome, Reply
from bot.core.payloads import decode
from bot.core.ports import DeliveryError, ManualClock
from tests.adapters.fake_discord import (
    INTENT_DM_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    MANAGE_GUILD,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    Sent,
)

TOKEN = "fake-token.abc.def"
QUESTION = "why does my lower back hurt after running"
#: one-word questions; the shipped knowledge answers at least one of them with "did you mean" buttons
CHATTER = "great run this morning everyone"
RED_FLAG = "since this morning I can't feel my groin or bum and I wet myself without noticing"


# ---------------------------------------------------------------------------- engines
class FixedEngine:
    """Always returns the same outcome (for adapter behaviour no knowledge file reaches, e.g. 4,000-char answers)."""

    def __init__(self, replies: tuple[Reply, ...] = (), kind: str = "answer", fail_on: str | None = None) -> None:
        self.replies = replies
        self.kind = kind
        self.fail_on = fail_on

    async def handle(self, msg: IncomingMessage) -> Outcome:
        if self.fail_on is not None and self.fail_on in msg.text:
            raise RuntimeError("boom")
        return Outcome(self.replies, self.kind)


@dataclass
class RecordingEngine:
    """Wraps an engine and keeps every (message, outcome) pair, so tests compare Discord's traffic to the engine."""

    inner: EngineLike
    calls: list[tuple[IncomingMessage, Outcome]] = field(default_factory=list)

    async def handle(self, msg: IncomingMessage) -> Outcome:
        outcome = await self.inner.handle(msg)
        self.calls.append((msg, outcome))
        return outcome

    def last(self) -> tuple[IncomingMessage, Outcome]:
        assert self.calls, "the engine was not called"
        return self.calls[-1]


# ---------------------------------------------------------------------------- the running bot
@dataclass
class Env:
    fake: FakeDiscord
    adapter: DiscordAdapter
    engine: RecordingEngine
    guild: FakeGuild
    alice: FakeUser
    errors: list[tuple[str, BaseException]]

    @property
    def channel(self) -> int:
        return self.guild.channel_ids[0]

    @property
    def listen_channel(self) -> int:
        return self.guild.channel_ids[1]

    async def ask_dm(self, user: FakeUser, text: str) -> list[Sent]:
        """Send a DM and return the bot's answer messages (as many as the engine returned replies)."""
        mark = self.fake.mark()
        calls = len(self.engine.calls)
        await self.fake.message(user, text)
        await self.fake.wait_until(lambda: len(self.engine.calls) > calls)
        _, outcome = self.engine.last()
        return await self.fake.wait_sent(len(outcome.replies), since=mark)


@asynccontextmanager
async def running(
    engine: EngineLike, fake: FakeDiscord | None = None, **settings: object
) -> AsyncIterator[Env]:
    """A fake Discord with one guild and a member, and a started adapter pointed at it."""
    async with FakeDiscord() if fake is None else _same(fake) as fake_:
        guild = next(iter(fake_.guilds.values()), None) or fake_.add_guild()
        alice = next(iter(fake_.users.values()), None) or fake_.add_user("alice")
        opts = {"guild_ids": (guild.id,), "listen_channel_ids": (guild.channel_ids[1],),
                "moderator_role_ids": guild.role_ids[:1], **settings}
        recording = RecordingEngine(engine)
        errors: list[tuple[str, BaseException]] = []
        with fake_.patch():
            adapter = DiscordAdapter(
                recording, DiscordAdapterSettings(**opts), TOKEN,  # type: ignore[arg-type]
                on_error=lambda event, exc: errors.append((event, exc)), guild_ready_timeout=0,
            )
            await adapter.start()
            try:
                yield Env(fake_, adapter, recording, guild, alice, errors)
            finally:
                await adapter.stop()
        assert fake_.unhandled == [], "the bot used routes the fake does not know"
        for sent in fake_.sent:
            assert sent.allowed_mentions is not None and sent.allowed_mentions.get("parse") == [], sent


@asynccontextmanager
async def _same(fake: FakeDiscord) -> AsyncIterator[FakeDiscord]:
    yield fake


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with real_runtime(tmp_path / "runbot.db") as rt:
        yield rt


@pytest.fixture
async def env(runtime: Runtime) -> AsyncIterator[Env]:
    async with running(runtime.engine) as e:
        runtime.add_adapter(e.adapter)
        yield e
        assert e.errors == []


def texts(replies: tuple[Reply, ...] | list[Reply]) -> list[str]:
    return [r.text for r in replies]


# ---------------------------------------------------------------------------- split_message
def test_split_message_keeps_short_text_whole() -> None:
    assert split_message("hello\n\nworld", 2000) == ["hello\n\nworld"]
    assert split_message("   ", 10) == []


def test_split_message_prefers_paragraph_boundaries() -> None:
    paragraphs = ["a" * 900, "b" * 900, "c" * 900]
    chunks = split_message("\n\n".join(paragraphs), 2000)
    assert chunks == ["a" * 900 + "\n\n" + "b" * 900, "c" * 900]


def test_split_message_falls_back_to_lines_words_and_hard_cuts() -> None:
    assert split_message("one two three", 7) == ["one two", "three"]
    assert split_message("line one\nline two", 12) == ["line one", "line two"]
    assert split_message("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=400), st.integers(min_value=1, max_value=60))
def test_split_message_chunks_fit_and_lose_nothing_but_whitespace(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert re.sub(r"\s", "", "".join(chunks)) == re.sub(r"\s", "", text)


# ---------------------------------------------------------------------------- start-up
async def test_connects_with_the_needed_intents_and_syncs_the_commands(env: Env) -> None:
    assert env.fake.identify is not None
    intents = env.fake.identify["intents"]
    for bit in (INTENT_GUILDS, INTENT_GUILD_MESSAGES, INTENT_DM_MESSAGES, INTENT_MESSAGE_CONTENT):
        assert intents & bit
    synced = {c["name"]: c for c in env.fake.synced_commands[str(env.guild.id)]}
    assert set(synced) == {"ask", "triage", "followups", "mydata", "forget", "consent", "help", "faq"}
    assert {o["name"] for o in synced["faq"]["options"]} == {"reload", "unanswered", "stats"}
    assert [c["value"] for c in synced["followups"]["options"][0]["choices"]] == ["on", "off"]
    assert "global" not in env.fake.synced_commands  # guild_ids given: synced to those guilds only


async def test_a_wrong_token_is_one_clear_line_without_the_token() -> None:
    async with FakeDiscord() as fake:
        fake.invalid_tokens.add(TOKEN)
        with fake.patch():
            adapter = DiscordAdapter(FixedEngine(), DiscordAdapterSettings(), TOKEN, guild_ready_timeout=0)
            with pytest.raises(StartupError) as info:
                await adapter.start()
            await adapter.stop()
    message = str(info.value)
    assert "DISCORD_TOKEN" in message and TOKEN not in message and "\n" not in message
    assert fake.unhandled == []


async def test_a_missing_message_content_intent_is_one_clear_line() -> None:
    async with FakeDiscord() as fake:
        fake.reject_intents = True
        with fake.patch():
            adapter = DiscordAdapter(FixedEngine(), DiscordAdapterSettings(), TOKEN, guild_ready_timeout=0)
            with pytest.raises(StartupError, match="Message Content intent") as info:
                await adapter.start()
            await adapter.stop()
    assert TOKEN not in str(info.value) and fake.unhandled == []


# ---------------------------------------------------------------------------- messages
async def test_a_dm_question_is_answered_in_the_dm(env: Env) -> None:
    sent = await env.ask_dm(env.alice, QUESTION)
    msg, outcome = env.engine.last()
    assert (msg.text, msg.is_private, msg.user_id) == (QUESTION, True, str(env.alice.id))
    assert outcome.kind == "answer"
    assert [s.content for s in sent] == texts(outcome.replies)
    assert all(s.dm_user_id == env.alice.id for s in sent)


async def test_a_server_mention_is_answered_and_unaddressed_chatter_ignored(env: Env) -> None:
    await env.fake.message(env.alice, CHATTER, channel_id=env.channel)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 1)
    assert env.engine.calls == [] and env.fake.sent == []

    asked = await env.fake.message(env.alice, QUESTION, channel_id=env.channel, mention_bot=True)
    await env.fake.wait_until(lambda: len(env.engine.calls) == 1)
    msg, outcome = env.engine.last()
    assert (msg.text, msg.is_private, msg.chat_id) == (QUESTION, False, str(env.channel))  # the mention is stripped
    assert outcome.kind == "answer"
    public = [r for r in outcome.replies if not r.private]
    sent = await env.fake.wait_sent(len(public), where=lambda s: s.channel_id == env.channel)
    assert [s.content for s in sent] == texts(public)
    assert str(sent[0].payload["message_reference"]["message_id"]) == asked["id"]

    # mentioning the bot's role (Discord's autocomplete offers it) addresses it too
    role = env.fake.bot_role_id(env.guild)
    await env.fake.message(env.alice, f"<@&{role}> {QUESTION}", channel_id=env.channel)
    msg, _ = await _next_call(env, 2)
    assert msg.text == QUESTION

    # replying to the bot's message addresses it too
    await env.fake.message(env.alice, "and what about hills?", channel_id=env.channel, reply_to=sent[0].id)
    await env.fake.wait_until(lambda: len(env.engine.calls) == 3)
    assert env.engine.last()[0].text == "and what about hills?"


async def test_everyone_and_role_mentions_never_ping(env: Env) -> None:
    text = f"@everyone <@&{env.guild.role_ids[0]}> {QUESTION}"
    mark = env.fake.mark()
    await env.fake.message(env.alice, text, channel_id=env.channel, mention_bot=True, mention_everyone=True)
    sent = await env.fake.wait_sent(1, since=mark, where=lambda s: s.channel_id == env.channel)
    assert env.engine.last()[1].kind == "answer"
    mentions = sent[0].allowed_mentions
    assert mentions is not None and mentions["parse"] == []
    assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user")


async def test_a_listen_channel_answers_only_confident_matches(env: Env) -> None:
    await env.fake.message(env.alice, CHATTER, channel_id=env.listen_channel)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 1)
    assert env.fake.sent == []
    assert env.engine.last()[0].listen_only

    await env.fake.message(env.alice, QUESTION, channel_id=env.listen_channel)
    _, outcome = await _next_call(env, 2)
    assert outcome.kind == "answer"
    sent = await env.fake.wait_sent(1, where=lambda s: s.channel_id == env.listen_channel)
    assert sent[0].content == next(r for r in outcome.replies if not r.private).text


async def test_a_long_answer_is_split_at_paragraphs() -> None:
    paragraphs = [f"Paragraph {i}. " + "Easy miles build a robust back. " * 40 for i in range(4)]  # ~1,300 chars each
    choices = (Choice("More", "faq:training-load"),)
    async with running(FixedEngine((Reply("\n\n".join(paragraphs), choices=choices),))) as e:
        await e.fake.message(e.alice, QUESTION)
        sent = await e.fake.wait_sent(len(paragraphs))
        assert [s.content for s in sent] == [p.strip() for p in paragraphs]  # two would not fit in 2,000
        assert [bool(s.buttons) for s in sent] == [False, False, False, True]  # buttons under the last part


async def test_one_failing_event_does_not_stop_the_bot() -> None:
    async with running(FixedEngine((Reply("fine"),), fail_on="explode")) as e:
        mark = e.fake.mark()
        await e.fake.message(e.alice, "please explode")
        sorry = await e.fake.wait_sent(1, since=mark)
        assert "something went wrong" in sorry[0].content.lower()
        assert [event for event, _ in e.errors] == ["engine"]
        sent = await e.ask_dm(e.alice, "still there?")
        assert [s.content for s in sent] == ["fine"]


def _no_or_first(message: Sent) -> str:
    """The calm path through triage: "No" / "None of these" where offered, else the first button."""
    for b in message.buttons:
        if b["label"] in ("No", "None of these"):
            return str(b["custom_id"])
    return str(message.buttons[0]["custom_id"])


async def test_a_channel_without_send_permission_is_logged_and_the_bot_carries_on(env: Env) -> None:
    env.fake.forbidden_channels.add(env.channel)
    await env.fake.message(env.alice, QUESTION, channel_id=env.channel, mention_bot=True)
    await env.fake.wait_until(lambda: env.adapter.messages_handled == 1)
    assert [event for event, _ in env.errors] == ["message"]
    env.errors.clear()
    sent = await env.ask_dm(env.alice, QUESTION)
    assert [s.content for s in sent] == texts(env.engine.last()[1].replies)


async def _next_call(env: Env, n: int) -> tuple[IncomingMessage, Outcome]:
    await env.fake.wait_until(lambda: len(env.engine.calls) >= n)
    return env.engine.calls[n - 1]


# ---------------------------------------------------------------------------- red flags and privacy
async def test_a_red_flag_in_a_server_gets_a_public_safety_reply_and_the_details_by_dm(env: Env) -> None:
    await env.fake.message(env.alice, RED_FLAG, channel_id=env.channel, mention_bot=True)
    _, outcome = await _next_call(env, 1)
    assert outcome.kind == "escalation" and outcome.escalation is not None
    public = [r for r in outcome.replies if not r.private]
    private = [r for r in outcome.replies if r.private]
    assert public and private
    sent = await env.fake.wait_sent(len(outcome.replies))
    in_channel = [s.content for s in sent if s.channel_id == env.channel]
    by_dm = [s.content for s in sent if s.dm_user_id == env.alice.id]
    assert in_channel == texts(public) and by_dm == texts(private)
    for detail in texts(private):
        assert detail not in in_channel


async def test_closed_dms_get_a_polite_note_in_the_channel_without_health_details(env: Env) -> None:
    env.alice.dms_closed = True
    await env.fake.message(env.alice, RED_FLAG, channel_id=env.channel, mention_bot=True)
    _, outcome = await _next_call(env, 1)
    public = [r for r in outcome.replies if not r.private]
    sent = await env.fake.wait_sent(len(public) + 1)
    assert all(s.channel_id == env.channel for s in sent)
    assert [s.content for s in sent] == [*texts(public), DMS_CLOSED_NOTE]
    private_words = {w for r in outcome.replies if r.private for w in r.text.lower().split() if len(w) > 6}
    assert not private_words & set(DMS_CLOSED_NOTE.lower().split())


async def test_a_red_flag_through_ask_answers_publicly_and_privately(env: Env) -> None:
    token = await env.fake.slash(env.alice, "ask", channel_id=env.channel, options={"question": RED_FLAG})
    _, outcome = await _next_call(env, 1)
    assert outcome.kind == "escalation"
    sent = await env.fake.wait_sent(len(outcome.replies))
    public = [s.content for s in sent if not s.private]
    assert public == texts([r for r in outcome.replies if not r.private])
    assert [s.content for s in sent if s.ephemeral] == texts([r for r in outcome.replies if r.private])
    assert sent[0].id == env.fake.interactions[token].original_id and not sent[0].private


# ---------------------------------------------------------------------------- slash commands and buttons
async def test_ask_answers_in_the_channel(env: Env) -> None:
    token = await env.fake.slash(env.alice, "ask", channel_id=env.channel, options={"question": QUESTION})
    msg, outcome = await _next_call(env, 1)
    assert (msg.text, msg.is_private) == (f"/ask {QUESTION}", False)
    assert outcome.kind == "answer"
    sent = await env.fake.wait_sent(len(outcome.replies))
    state = env.fake.interactions[token]
    assert state.callbacks[0]["type"] == 5  # deferred first
    public = [s for s in sent if not s.private]
    assert [s.content for s in public] == texts([r for r in outcome.replies if not r.private])
    assert public[0].id == state.original_id  # the answer replaced the "thinking…" message


def vague_question(runtime: Runtime) -> str:
    """A question the current knowledge is unsure about (moderators edit it, so don't hard-code one)."""
    return vague_questions(runtime.knowledge.current)[0]


async def test_a_did_you_mean_button_click_answers_and_disables_the_buttons(env: Env, runtime: Runtime) -> None:
    sent = await env.ask_dm(env.alice, vague_question(runtime))
    _, outcome = env.engine.last()
    assert outcome.kind == "did-you-mean"
    offer = next(s for s in sent if s.buttons)
    payloads = [c.payload for r in outcome.replies for c in r.choices]
    assert [b["custom_id"] for b in offer.buttons] == payloads
    mark = env.fake.mark()
    token = await env.fake.click(env.alice, offer, payloads[0])
    msg, answer = await _next_call(env, 2)
    assert msg.choice == payloads[0] and answer.kind == "answer"
    replies = await env.fake.wait_sent(len(answer.replies), since=mark)
    assert [s.content for s in replies] == texts(answer.replies)
    assert env.fake.interactions[token].callbacks[0]["type"] == 6  # acknowledged before the engine ran
    edited = [body for mid, body in env.fake.edits if mid == offer.id]
    buttons = [c for row in edited[-1]["components"] for c in row["components"]]
    assert all(b["disabled"] for b in buttons) and len(buttons) == len(payloads)


async def test_triage_through_buttons_to_an_outcome_stays_private(env: Env) -> None:
    await env.fake.slash(env.alice, "triage", channel_id=env.channel)
    msg, outcome = await _next_call(env, 1)
    assert msg.text == "/triage" and outcome.kind == "consent"
    outcome, sent = await _agree(env, await env.fake.wait_sent(len(outcome.replies)))
    assert outcome.kind == "triage"
    for _ in range(20):
        assert all(s.private for s in sent), "triage must not appear in the public channel"
        step = next((s for s in reversed(sent) if any(button(b["custom_id"], "tri") for b in s.buttons)), None)
        if step is None:
            break
        calls, mark = len(env.engine.calls), env.fake.mark()
        await env.fake.click(env.alice, step, _no_or_first(step))
        _, outcome = await _next_call(env, calls + 1)
        sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
        assert [s.content for s in sent] == texts(outcome.replies)
    else:
        pytest.fail("triage did not reach an outcome in 20 clicks")
    assert outcome.kind in ("triage", "escalation")
    assert not any(button(b["custom_id"], "tri") for s in sent for b in s.buttons)


async def _agree(env: Env, sent: list[Sent]) -> tuple[Outcome, list[Sent]]:
    """Press "Yes, I agree" on the consent question (issue 16) and return what follows with its messages."""
    asked = next(s for s in sent if any(button(b["custom_id"], "consent", "yes") for b in s.buttons))
    assert asked.private, "the consent question is asked privately"
    calls, mark = len(env.engine.calls), env.fake.mark()
    await env.fake.click(env.alice, asked, next(b["custom_id"] for b in asked.buttons if "yes" in b["custom_id"]))
    _, outcome = await _next_call(env, calls + 1)
    return outcome, await env.fake.wait_sent(len(outcome.replies), since=mark)


async def test_forget_from_a_slash_command_is_ephemeral(env: Env, runtime: Runtime) -> None:
    await env.ask_dm(env.alice, "/followups off")  # a setting: now the store knows alice
    assert await runtime.store.find_user("discord", str(env.alice.id)) is not None
    mark = env.fake.mark()
    await env.fake.slash(env.alice, "forget", channel_id=env.channel)
    msg, outcome = await _next_call(env, 2)
    assert (msg.text, msg.user_id) == ("/forget", str(env.alice.id)) and outcome.kind == "command"
    sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert [s.content for s in sent] == texts(outcome.replies) and all(s.ephemeral for s in sent)
    confirm = next(s for s in sent if s.buttons)
    yes = next(b["custom_id"] for b in confirm.buttons if b["custom_id"].endswith("yes"))
    mark = env.fake.mark()
    await env.fake.click(env.alice, confirm, yes)
    _, done = await _next_call(env, 3)
    sent = await env.fake.wait_sent(len(done.replies), since=mark)
    assert [s.content for s in sent] == texts(done.replies) and all(s.ephemeral for s in sent)
    assert await runtime.store.find_user("discord", str(env.alice.id)) is None


async def test_consent_from_a_slash_command_is_private(env: Env) -> None:
    mark = env.fake.mark()
    await env.fake.slash(env.alice, "consent", channel_id=env.channel)
    msg, outcome = await _next_call(env, 1)
    assert (msg.text, msg.user_id) == ("/consent", str(env.alice.id))
    sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert [s.content for s in sent] == texts(outcome.replies) and all(s.ephemeral for s in sent)
    assert "agree" in sent[0].content.lower() or "consent" in sent[0].content.lower()


async def test_faq_commands_need_a_moderator(env: Env) -> None:
    await env.fake.slash(env.alice, "faq", channel_id=env.channel, subcommand="stats")
    refusal = await env.fake.wait_sent(1)
    assert refusal[0].content == NOT_A_MODERATOR and refusal[0].ephemeral
    assert env.engine.calls == []

    mod = env.fake.add_user("maya", roles=(env.guild.role_ids[0],))
    admin = env.fake.add_user("sam", permissions=MANAGE_GUILD)
    for n, user in enumerate((mod, admin), start=1):
        mark = env.fake.mark()
        await env.fake.slash(user, "faq", channel_id=env.channel, subcommand="stats")
        msg, outcome = await _next_call(env, n)
        assert (msg.text, msg.is_moderator) == ("/faq stats", True)
        sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
        assert all(s.ephemeral for s in sent)


async def test_buttons_still_work_after_a_restart(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild()
        alice = fake.add_user("alice")
        async with real_runtime(tmp_path / "runbot.db") as rt, running(rt.engine, fake) as first:
            sent = await first.ask_dm(alice, vague_question(rt))
            offer = next(s for s in sent if s.buttons)
        # a new process: new store connection, new engine, new discord.py client; the old message is all that's left
        async with real_runtime(tmp_path / "runbot.db") as rt, running(rt.engine, fake) as second:
            mark = fake.mark()
            await fake.click(alice, offer, offer.buttons[0]["custom_id"])
            msg, outcome = await _next_call(second, 1)
            assert msg.choice == offer.buttons[0]["custom_id"] and outcome.kind == "answer"
            assert await fake.wait_sent(len(outcome.replies), since=mark)
            assert second.errors == []


# ---------------------------------------------------------------------------- follow-ups (the port)
async def test_a_follow_up_is_delivered_by_dm_by_the_scheduler(env: Env, runtime: Runtime) -> None:
    """/triage in a DM, accept the check-in offer, move the clock, and the scheduler DMs the check-in."""
    await env.fake.slash(env.alice, "triage")
    _, outcome = await _next_call(env, 1)
    outcome, sent = await _agree(env, await env.fake.wait_sent(len(outcome.replies)))
    offer: Sent | None = None
    for _ in range(20):
        offer = next((s for s in sent if any(button(b["custom_id"], "fu", "yes") for b in s.buttons)), None)
        step = next((s for s in reversed(sent) if any(button(b["custom_id"], "tri") for b in s.buttons)), None)
        if offer is not None or step is None:
            break
        calls, mark = len(env.engine.calls), env.fake.mark()
        await env.fake.click(env.alice, step, _no_or_first(step))
        _, outcome = await _next_call(env, calls + 1)
        sent = await env.fake.wait_sent(len(outcome.replies), since=mark)
    assert offer is not None, "the calm triage path should offer a check-in"
    calls, mark = len(env.engine.calls), env.fake.mark()
    accept = next(b["custom_id"] for b in offer.buttons if button(b["custom_id"], "fu", "yes"))
    await env.fake.click(env.alice, offer, accept)
    _, scheduled = await _next_call(env, calls + 1)
    assert scheduled.kind == "followup"
    await env.fake.wait_sent(len(scheduled.replies), since=mark)

    assert isinstance(runtime.clock, ManualClock)
    mark = env.fake.mark()
    assert await runtime.scheduler.run_due() == 0  # not yet due
    runtime.clock.advance(days=runtime.settings.followups.first_after_days, minutes=1)
    assert await runtime.scheduler.run_due() == 1
    checkin = (await env.fake.wait_sent(1, since=mark))[0]
    assert checkin.dm_user_id == env.alice.id and checkin.via == "channel"  # a plain DM, not an interaction reply
    assert [decode(b["custom_id"]).args[-1] for b in checkin.buttons] == ["better", "same", "worse"]  # type: ignore[union-attr]
    calls, mark = len(env.engine.calls), env.fake.mark()
    await env.fake.click(env.alice, checkin, checkin.buttons[0]["custom_id"])
    _, answered = await _next_call(env, calls + 1)
    assert answered.kind == "followup"
    assert [s.content for s in await env.fake.wait_sent(len(answered.replies), since=mark)] == texts(answered.replies)


async def test_send_fetches_an_uncached_user(env: Env) -> None:
    choices = (Choice("Better", "fu:1:better"), Choice("Worse", "fu:1:worse"))
    replies = (Reply("How is your back today?", choices=choices),)
    await env.adapter.send(ChatRef("discord", str(env.alice.id), str(env.channel)), replies)
    sent = await env.fake.wait_sent(1)
    assert sent[0].dm_user_id == env.alice.id and sent[0].content == replies[0].text
    assert [b["custom_id"] for b in sent[0].buttons] == ["fu:1:better", "fu:1:worse"]
    assert ("GET", f"/api/v10/users/{env.alice.id}", None) in env.fake.requests  # not in the cache: fetched


async def test_follow_up_delivery_errors_say_whether_retrying_helps(env: Env) -> None:
    env.alice.dms_closed = True
    with pytest.raises(DeliveryError) as closed:
        await env.adapter.send(ChatRef("discord", str(env.alice.id), ""), (Reply("hi"),))
    assert closed.value.permanent
    with pytest.raises(DeliveryError) as unknown:
        await env.adapter.send(ChatRef("discord", "123456789012345678", ""), (Reply("hi"),))
    assert unknown.value.permanent


async def test_followups_off_from_a_slash_command(env: Env, runtime: Runtime) -> None:
    await env.fake.slash(env.alice, "followups", options={"state": "off"})  # in a DM
    msg, outcome = await _next_call(env, 1)
    assert (msg.text, msg.is_private) == ("/followups off", True)
    sent = await env.fake.wait_sent(len(outcome.replies))
    assert [s.content for s in sent] == texts(outcome.replies)
    user = await runtime.store.find_user("discord", str(env.alice.id))
    assert user is not None and not user.followups_enabled


async def test_notes_for_moderators_go_to_their_channel() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild(channels=3)
        fake.add_user("alice")
        async with running(FixedEngine(), fake, moderator_channel_id=guild.channel_ids[2]) as e:
            assert await e.adapter.notify_moderators("knowledge/faq-causes.yaml:12: duplicate id 'overstriding'")
            sent = await fake.wait_sent(1)
            assert sent[0].channel_id == guild.channel_ids[2] and "faq-causes.yaml:12" in sent[0].content


async def test_ask_with_only_private_replies_removes_the_public_placeholder() -> None:
    async with running(FixedEngine((Reply("Details just for you.", private=True),))) as e:
        token = await e.fake.slash(e.alice, "ask", channel_id=e.channel, options={"question": QUESTION})
        sent = await e.fake.wait_sent(1)
        state = e.fake.interactions[token]
        assert state.original_id in e.fake.deleted  # the public "thinking…" message is gone
        assert sent[0].content == "Details just for you." and sent[0].ephemeral
