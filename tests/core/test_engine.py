"""The engine's routing: red flags first, commands, triage, FAQ, fallback; notices and privacy."""

from __future__ import annotations

import pytest
from support import button, dm, group, press_agree

from bot.bootstrap import Runtime
from bot.core.decision import decide
from bot.core.payloads import decode


async def test_faq_question_gets_the_matching_answer(memory_runtime: Runtime) -> None:
    out = await memory_runtime.engine.handle(dm("why does my lower back hurt after running?"))
    assert out.kind == "answer"
    assert out.faq_id == "back-pain-causes"
    assert out.confidence >= memory_runtime.settings.matching.confident
    assert "not medical advice" in out.replies[0].text
    assert out.escalation is None


async def test_typos_slang_and_synonyms_still_match(memory_runtime: Runtime) -> None:
    engine = memory_runtime.engine
    assert (await engine.handle(dm("shud i ice or heat my lumbar after a jog"))).faq_id == "ice-or-heat"
    assert (await engine.handle(dm("when should i replace my trainers"))).faq_id == "shoe-replacement"


async def test_unknown_question_gets_fallback_and_is_recorded_without_user(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    out = await engine.handle(dm("does a xylophone quantum zebra help", user="secret-user-42"))
    assert out.kind == "fallback" and out.faq_id is None
    assert "/triage" in out.replies[0].text
    rows = await quiet_runtime.store.unanswered()
    assert [r["text"] for r in rows] == ["does a xylophone quantum zebra help"]
    async with quiet_runtime.store.db.execute("SELECT * FROM unanswered") as cur:
        for row in await cur.fetchall():
            assert "secret-user-42" not in " ".join(str(v) for v in tuple(row))


async def test_club_chatter_gets_no_faq_answer_and_is_not_recorded(memory_runtime: Runtime) -> None:
    engine = memory_runtime.engine
    for text in ["who is bringing the cake to the club social on friday", "selling my old gps watch, dm me"]:
        out = await engine.handle(dm(text))
        assert out.faq_id is None, text
    assert await memory_runtime.store.unanswered() == []


async def test_emergency_is_escalated_even_mid_triage(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    started = await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    assert started.kind == "triage"
    out = await engine.handle(dm("I can't feel my groin and can't pee"))
    assert out.escalation is not None and out.escalation.level == "emergency"
    assert "999" in out.replies[0].text
    user = await quiet_runtime.store.get_or_create_user("test", "u1")
    assert await quiet_runtime.store.get_triage(user) is None  # the check was interrupted
    async with quiet_runtime.store.db.execute("SELECT level, category FROM escalations") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert rows == [("emergency", out.escalation.category)]


async def test_negated_symptom_does_not_escalate(memory_runtime: Runtime) -> None:
    out = await memory_runtime.engine.handle(dm("no numbness, just stiff"))
    assert out.escalation is None


async def test_red_flag_in_group_is_public_safe_plus_private_details(memory_runtime: Runtime) -> None:
    out = await memory_runtime.engine.handle(group("my back hurts and I've lost control of my bladder", name="Alex"))
    assert out.escalation is not None and out.escalation.level == "emergency"
    public = [r for r in out.replies if not r.private]
    private = [r for r in out.replies if r.private]
    assert len(public) == 1 and len(private) == 1
    assert "bladder" not in public[0].text.lower() and "Alex" in public[0].text
    assert "999" in public[0].text


async def test_first_message_gets_the_notice_once(runtime: Runtime) -> None:
    first = await runtime.engine.handle(dm("hello"))
    assert "not medical advice" in first.replies[0].text and "/forget" in first.replies[0].text
    second = await runtime.engine.handle(dm("hello again"))
    assert all("/forget deletes it" not in r.text for r in second.replies)


async def test_did_you_mean_offers_choices_and_a_choice_answers(memory_runtime: Runtime) -> None:
    engine = memory_runtime.engine
    k, m = engine.knowledge.current, engine.settings.matching
    vague = [t for t in ("core", "hips", "back pain", "stretch or ice") if decide(k, t, m).kind == "did-you-mean"]
    assert vague, "no short question gets a 'did you mean' from the shipped knowledge any more"
    out = await engine.handle(dm(vague[0]))
    assert out.kind == "did-you-mean"
    assert 1 <= len(out.replies[0].choices) <= 3
    payload = out.replies[0].choices[0].payload
    assert button(payload, "faq")
    picked = await engine.handle(dm(choice=payload))
    assert picked.kind == "answer" and picked.faq_id == decode(payload).args[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", ["faq:no-such-entry", "tri:nope:0", "bogus", "fu:999:better", "", "x" * 500])
async def test_unknown_or_stale_buttons_expire_politely(memory_runtime: Runtime, payload: str) -> None:
    out = await memory_runtime.engine.handle(dm(choice=payload))
    assert out.kind == "expired"
    assert "expired" in out.replies[0].text


async def test_commands(memory_runtime: Runtime) -> None:
    engine = memory_runtime.engine
    help_out = await engine.handle(dm("/help"))
    assert "/triage" in help_out.replies[0].text and "/forget" in help_out.replies[0].text
    unknown = await engine.handle(dm("/frobnicate"))
    assert "don't know the command" in unknown.replies[0].text
    ask = await engine.handle(dm("/ask@runbot how often should I replace running shoes"))
    assert ask.faq_id == "shoe-replacement"
    refused = await engine.handle(dm("/faq stats"))
    assert "moderators" in refused.replies[0].text


async def test_empty_and_junk_messages_get_a_friendly_reply(memory_runtime: Runtime) -> None:
    for text in ["", "   ", "🙂🙂🙂", "\u200b\u200b", "\u202e", "a\u0301" * 300]:
        out = await memory_runtime.engine.handle(dm(text))
        assert out.replies, text
        assert out.kind in ("empty", "fallback", "did-you-mean")


async def test_flood_is_throttled_but_red_flags_get_through(runtime: Runtime) -> None:
    engine = runtime.engine
    engine._monotonic = lambda: 1000.0  # frozen time: the bucket never refills
    kinds = [(await engine.handle(dm("why does my back hurt", user="flooder"))).kind for _ in range(30)]
    assert kinds.count("throttled") == 30 - runtime.settings.rate_limit.burst
    answered = [k for k in kinds if k != "throttled"]
    assert len(answered) == runtime.settings.rate_limit.burst
    red = await engine.handle(dm("crushing chest pain on my run and I feel faint", user="flooder"))
    assert red.escalation is not None and red.replies
    other = await engine.handle(dm("why does my back hurt", user="someone-else"))
    assert other.kind != "throttled"


async def test_red_flag_at_the_end_of_a_long_message_still_escalates(memory_runtime: Runtime) -> None:
    text = "so about my training block. " * 120 + "and since this morning I can't control my bladder"
    assert len(text) > 3000
    out = await memory_runtime.engine.handle(dm(text))
    assert out.escalation is not None and out.escalation.level == "emergency"


async def test_greetings_get_a_greeting_and_are_not_recorded(memory_runtime: Runtime) -> None:
    for text in ["hi", "thanks!", "hello there"]:
        out = await memory_runtime.engine.handle(dm(text))
        assert out.faq_id is None and out.replies, text
        assert "noted" not in out.replies[0].text
    assert await memory_runtime.store.unanswered() == []
