"""The triage flow: buttons and typed answers, persistence across a restart, cancel, expired buttons."""

from __future__ import annotations

from pathlib import Path

from support import build_shipped, button, dm, press_agree, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core import triage
from bot.core.engine import EngineOptions
from bot.core.ports import ManualClock

OPTIONS = EngineOptions(first_notice=False, rate_limit=False)


def _payload(out, label_start: str) -> str:  # type: ignore[no-untyped-def]
    for reply in out.replies:
        for c in reply.choices:
            if c.label.lower().startswith(label_start.lower()):
                return c.payload
    raise AssertionError(f"no choice starting with {label_start!r} in {[r.choices for r in out.replies]}")


def test_state_machine_is_pure_and_reaches_an_outcome() -> None:
    flow = shipped_knowledge().triage
    result = triage.start(flow)
    assert result.state is not None and result.step is not None
    state = result.state
    seen = 0
    while True:
        step = flow.steps[state.step_id]
        index = next(
            i for i, c in enumerate(step.choices) if c.label.lower() in ("no", "none of these", "less than 6 weeks")
            or c.label.lower().startswith("sore after")
        )
        result = triage.step(flow, state, index)
        seen += 1
        if result.state is None:
            break
        state = result.state
    assert result.outcome is not None and result.outcome.disposition == "self-care"
    assert seen == 9 < flow.max_questions  # every "No": one question fewer than after a small fall
    bad = triage.step(flow, triage.TriageState(flow.id, flow.start), 99)
    assert not bad.understood


def test_typed_answers_map_to_choices() -> None:
    flow = shipped_knowledge().triage
    duration = flow.steps["duration"]
    assert triage.match_answer(duration, "2") == 1
    assert triage.match_answer(duration, "less than 6 weeks") == 0
    assert triage.match_answer(duration, "more than 12 wks") == 2
    assert triage.match_answer(duration, "6-12") == 1
    assert triage.match_answer(duration, "12") is None  # "6 to 12" or "more than 12": ask again
    yes_no = flow.steps["unwell"]
    assert triage.match_answer(yes_no, "nope") == 1
    assert triage.match_answer(yes_no, "yes") == 0
    assert triage.match_answer(yes_no, "yes i do") == 0
    assert triage.match_answer(yes_no, "no thanks") == 1
    assert triage.match_answer(yes_no, "purple") is None


def test_a_bare_yes_never_picks_one_of_several_yes_choices() -> None:
    """Typed answers to multi-option questions: a yes or no that fits several choices is asked again, words that
    tell the choices apart pick one, and a yes-or-no that contradicts its own words is asked again."""
    flow = shipped_knowledge().triage
    weakness, legs, injury, history = (flow.steps[s] for s in ("leg-weakness", "leg-feeling", "injury", "history"))
    for step in (weakness, legs, injury, history):
        for typed in ("yes", "Yes!", "yeah", "y", "yep i do"):
            assert triage.match_answer(step, typed) is None, (step.id, typed)
            assert triage.reask_hint(step, typed).startswith("Which one?"), (step.id, typed)
    labels = {s.id: [c.label for c in s.choices] for s in (weakness, legs, injury, history)}
    assert labels["leg-feeling"][triage.match_answer(legs, "yes, both legs")] == "Yes, both legs"
    assert labels["leg-feeling"][triage.match_answer(legs, "both")] == "Yes, both legs"
    assert labels["leg-feeling"][triage.match_answer(legs, "just the one leg")] == "Yes, one leg"
    assert labels["leg-feeling"][triage.match_answer(legs, "nope")] == "No"
    assert triage.match_answer(legs, "no, both legs") is None  # contradicts itself: ask again
    assert labels["leg-weakness"][triage.match_answer(weakness, "one leg")] == "Yes, one leg, and not getting worse"
    assert triage.match_answer(weakness, "getting worse") is None  # both choices mention it
    assert labels["injury"][triage.match_answer(injury, "yes a small trip")] == "Yes, a small fall or trip"
    assert labels["history"][triage.match_answer(history, "none")] == "None of these"
    over_50 = triage.match_answer(history, "im over 50")
    assert labels["history"][over_50] == "I'm over 50 and this back pain is new to me"
    assert triage.reask_hint(history, "banana").startswith("Please pick one of the options")


async def test_typed_yes_to_a_multi_option_step_asks_which_one(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    await engine.handle(dm("no"))
    out = await engine.handle(dm("yes"))  # "is a leg weak?": both legs (emergency) or one leg (urgent)
    assert out.kind == "triage" and out.escalation is None
    assert out.replies[0].text.startswith("Which one?")
    assert [c.label for c in out.replies[0].choices][:2] == ["Yes, both legs, or it's getting worse",
                                                            "Yes, one leg, and not getting worse"]
    user = await quiet_runtime.store.get_or_create_user("test", "u1")
    state = await quiet_runtime.store.get_triage(user)
    assert state is not None and state.step_id == "leg-weakness"  # still waiting for the answer
    out = await engine.handle(dm("one leg"))
    assert out.escalation is not None and out.escalation.category == "triage:urgent-leg-weakness"


async def test_triage_survives_a_restart_between_answers(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    clock = ManualClock()
    async with build_shipped(Settings(), clock=clock, db_path=db, options=OPTIONS) as rt:
        out = await press_agree(rt.engine, await rt.engine.handle(dm("/triage")), dm("/triage"))
        out = await rt.engine.handle(dm(choice=_payload(out, "No")))
        assert "weak" in out.replies[-1].text.lower()
        out = await rt.engine.handle(dm(choice=_payload(out, "No")))
        assert "tingling" in out.replies[-1].text.lower()
        pending = _payload(out, "No")
    # a new engine and store on the same database file: the position is still there
    async with build_shipped(Settings(), clock=clock, db_path=db, options=OPTIONS) as rt:
        out = await rt.engine.handle(dm(choice=pending))
        assert "fall" in out.replies[-1].text.lower()
        out = await rt.engine.handle(dm("no"))  # typed answer
        out = await rt.engine.handle(dm("nope"))
        out = await rt.engine.handle(dm("none of these"))
        out = await rt.engine.handle(dm("no"))
        out = await rt.engine.handle(dm("1"))  # less than 6 weeks
        out = await rt.engine.handle(dm("no"))
        out = await rt.engine.handle(dm(choice=_payload(out, "Sore after")))
        assert out.kind == "triage"
        plan = out.replies[0]
        assert "not medical advice" in plan.text
        assert any(button(c.payload, "faq") for c in plan.choices)
        assert any(button(c.payload, "fu", "yes") for r in out.replies for c in r.choices)
        user = await rt.store.get_or_create_user("test", "u1")
        assert await rt.store.get_triage(user) is None


async def test_red_flag_answer_in_triage_ends_in_emergency(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    out = await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    out = await engine.handle(dm(choice=_payload(out, "Yes")))
    assert out.escalation is not None and out.escalation.level == "emergency"
    assert "999" in out.replies[0].text
    assert out.escalation.category == "triage:emergency-cauda-equina"


async def test_cancel_and_stale_buttons(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    out = await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    first = _payload(out, "No")
    await engine.handle(dm(choice=first))
    again = await engine.handle(dm(choice=first))  # the same button pressed twice
    assert again.kind == "expired"
    cancelled = await engine.handle(dm("/cancel"))
    assert "stopped" in cancelled.replies[0].text
    late = await engine.handle(dm(choice=_payload(out, "No")))
    assert late.kind == "expired"
    nothing = await engine.handle(dm("/cancel"))
    assert "nothing to cancel" in nothing.replies[0].text.lower()


async def test_unclear_typed_answer_reasks(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    out = await engine.handle(dm("banana"))
    assert out.kind == "triage"
    assert "pick one of the options" in out.replies[0].text
    assert out.replies[0].choices


async def test_triage_from_a_group_goes_private(quiet_runtime: Runtime) -> None:
    from support import group

    out = await quiet_runtime.engine.handle(group("/triage"))
    assert out.replies and all(r.private for r in out.replies)
