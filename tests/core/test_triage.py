"""The triage flow: buttons and typed answers, persistence across a restart, cancel, expired buttons."""

from __future__ import annotations

from pathlib import Path

from support import KNOWLEDGE, dm

from bot.bootstrap import Runtime, build
from bot.config import Settings
from bot.core import triage as T
from bot.core.engine import EngineOptions
from bot.core.knowledge import load_knowledge
from bot.core.ports import ManualClock

OPTIONS = EngineOptions(first_notice=False, rate_limit=False)


def _payload(out, label_start: str) -> str:  # type: ignore[no-untyped-def]
    for reply in out.replies:
        for c in reply.choices:
            if c.label.lower().startswith(label_start.lower()):
                return c.payload
    raise AssertionError(f"no choice starting with {label_start!r} in {[r.choices for r in out.replies]}")


def test_state_machine_is_pure_and_reaches_an_outcome() -> None:
    flow = load_knowledge(KNOWLEDGE).triage
    result = T.start(flow)
    assert result.state is not None and result.step is not None
    state = result.state
    seen = 0
    while True:
        step = flow.steps[state.step_id]
        index = len(step.choices) - 1 if step.id == "history" else next(
            i for i, c in enumerate(step.choices) if c.label.lower() in ("no", "less than 6 weeks")
            or c.label.lower().startswith("sore after")
        )
        result = T.step(flow, state, index)
        seen += 1
        if result.state is None:
            break
        state = result.state
    assert result.outcome is not None and result.outcome.disposition == "self-care"
    assert 7 <= seen <= 10  # about 8 questions on the common path
    bad = T.step(flow, T.TriageState(flow.id, flow.start), 99)
    assert not bad.understood


def test_typed_answers_map_to_choices() -> None:
    flow = load_knowledge(KNOWLEDGE).triage
    duration = flow.steps["duration"]
    assert T.match_answer(duration, "2") == 1
    assert T.match_answer(duration, "less than 6 weeks") == 0
    assert T.match_answer(duration, "more than 12 wks") == 2
    yes_no = flow.steps["unwell"]
    assert T.match_answer(yes_no, "nope") == 1
    assert T.match_answer(yes_no, "yes") == 0
    assert T.match_answer(yes_no, "purple") is None


async def test_triage_survives_a_restart_between_answers(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    clock = ManualClock()
    async with build(Settings(), clock=clock, knowledge_path=KNOWLEDGE, db_path=db, options=OPTIONS) as rt:
        out = await rt.engine.handle(dm("/triage"))
        out = await rt.engine.handle(dm(choice=_payload(out, "No")))
        assert "weakness" in out.replies[-1].text.lower()
        pending = _payload(out, "No")
    # a new engine and store on the same database file: the position is still there
    async with build(Settings(), clock=clock, knowledge_path=KNOWLEDGE, db_path=db, options=OPTIONS) as rt:
        out = await rt.engine.handle(dm(choice=pending))
        assert "fall" in out.replies[-1].text.lower()
        out = await rt.engine.handle(dm("no"))  # typed answer
        out = await rt.engine.handle(dm("no"))
        out = await rt.engine.handle(dm("none of these"))
        out = await rt.engine.handle(dm("no"))
        out = await rt.engine.handle(dm("1"))  # less than 6 weeks
        out = await rt.engine.handle(dm("no"))
        out = await rt.engine.handle(dm(choice=_payload(out, "Sore after")))
        assert out.kind == "triage"
        plan = out.replies[0]
        assert "not medical advice" in plan.text
        assert any(c.payload.startswith("faq:") for c in plan.choices)
        assert any(c.payload.startswith("fu:yes:") for r in out.replies for c in r.choices)
        user = await rt.store.user("test", "u1")
        assert await rt.store.get_triage(user) is None


async def test_red_flag_answer_in_triage_ends_in_emergency(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    out = await engine.handle(dm("/triage"))
    out = await engine.handle(dm(choice=_payload(out, "Yes")))
    assert out.escalation is not None and out.escalation.level == "emergency"
    assert "999" in out.replies[0].text


async def test_cancel_and_stale_buttons(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    out = await engine.handle(dm("/triage"))
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
    await engine.handle(dm("/triage"))
    out = await engine.handle(dm("banana"))
    assert out.kind == "triage"
    assert "pick one of the options" in out.replies[0].text
    assert out.replies[0].choices


async def test_triage_from_a_group_goes_private(quiet_runtime: Runtime) -> None:
    from support import group

    out = await quiet_runtime.engine.handle(group("/triage"))
    assert out.replies and all(r.private for r in out.replies)
