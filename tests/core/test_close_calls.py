"""Close calls (issue 15): an answer whose runners-up came within ``matching.runner_up_window`` points offers them
as "did you mean" buttons with it, so a runner who got the neighbouring answer is one tap from the right one; a
message worded as one of the entry's own phrasings, or a clear winner, gets the answer as before. These are the
words' close calls (the FAQ model switched off); the model offers what came close by its own chances
(tests/core/test_faq_model.py)."""

from __future__ import annotations

import dataclasses

import pytest
from support import build_shipped, dm, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core import payloads
from bot.core.decision import decide, runners_up
from bot.core.engine import EngineOptions

CLOSE_CALL = "should i stretch or warm up before a run to protect my back"
WORDS = dataclasses.replace(Settings(), matching=dataclasses.replace(Settings().matching, model=False))


@pytest.fixture
async def words_runtime(tmp_path):  # type: ignore[no-untyped-def]
    runtime = build_shipped(WORDS, db_path=tmp_path / "runbot.db", options=EngineOptions(first_notice=False))
    async with runtime:
        yield runtime


async def test_a_close_call_answers_and_offers_the_runners_up_first(words_runtime: Runtime) -> None:
    out = await words_runtime.engine.handle(dm(CLOSE_CALL))
    assert (out.kind, out.faq_id) == ("answer", "warm-up-cool-down")
    assert out.alternatives[0] == "stretching" and "warm-up-cool-down" not in out.alternatives
    (reply,) = [r for r in out.replies if r.choices]
    assert 'Not what you asked? Did you mean "Stretches after a run"' in reply.text
    shown = [c.payload for c in reply.choices]
    assert shown[: len(out.alternatives)] == [payloads.faq(i) for i in out.alternatives]
    assert len(shown) <= 3 and len(set(shown)) == len(shown)


async def test_a_clear_answer_keeps_its_related_buttons_and_offers_nothing(words_runtime: Runtime) -> None:
    k = shipped_knowledge()
    out = await words_runtime.engine.handle(dm("why does my lower back hurt after running"))  # its own phrasing
    assert (out.kind, out.faq_id, out.alternatives) == ("answer", "back-pain-causes", ())
    (reply,) = [r for r in out.replies if r.choices]
    assert "Did you mean" not in reply.text
    related = [payloads.faq(r) for r in k.entries["back-pain-causes"].related][:3]
    assert [c.payload for c in reply.choices] == related


def test_no_shipped_phrasing_is_a_close_call() -> None:
    k = shipped_knowledge()
    m = WORDS.matching
    for entry in k.entries.values():
        for question in entry.questions:
            d = decide(k, question, m)
            assert d.kind != "answer" or runners_up(d.candidates, m) == (), question


async def test_the_window_at_zero_offers_no_runners_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(WORDS, matching=dataclasses.replace(WORDS.matching, runner_up_window=0))
    runtime = build_shipped(settings, db_path=tmp_path / "runbot.db", options=EngineOptions(first_notice=False))
    async with runtime:
        out = await runtime.engine.handle(dm(CLOSE_CALL))
    assert (out.kind, out.faq_id, out.alternatives) == ("answer", "warm-up-cool-down", ())
