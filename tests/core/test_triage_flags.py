"""Issue 13, triage items 1-6: flags that raise the plan, one leg or both, weakness and numbness apart, the new
red-flag questions, the safety net and the question count, emergency plans. Walked through the real engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import KNOWLEDGE, button, dm, press_agree, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import SafetySettings
from bot.core import triage
from bot.core.knowledge import KnowledgeError, load_knowledge
from bot.core.messages import Escalation, Outcome
from bot.core.payloads import decode, followup_offer
from bot.core.placeholders import fill, region_words
from bot.core.replies import URGENT_HEADER, triage_plan
from bot.core.triage_load import parse as parse_triage
from bot.core.yamlio import load_text

#: the answer given at each step unless a test says otherwise (the calm path)
CALM = {"duration": "Less than 6 weeks", "running-impact": "Sore after runs", "history": "None of these"}


async def walk(engine, answers: dict[str, str], user: str = "u1") -> tuple[Outcome, list[str]]:  # type: ignore[no-untyped-def]
    """/triage, then press at every step the button whose label starts with ``answers[step]`` (else the calm one);
    returns the last outcome and the steps asked, in order."""
    out = await press_agree(engine, await engine.handle(dm("/triage", user=user)), dm("/triage", user=user))
    asked: list[str] = []
    for _ in range(20):
        buttons = [c for r in out.replies for c in r.choices if button(c.payload, "tri")]
        if not buttons:
            return out, asked
        step_id = decode(buttons[0].payload).args[0]  # type: ignore[union-attr]
        asked.append(step_id)
        want = answers.get(step_id, CALM.get(step_id, "No"))
        press = next(c for c in buttons if c.label.startswith(want))
        out = await engine.handle(dm(choice=press.payload, user=user))
    raise AssertionError("the check did not end")


def plan(out: Outcome) -> str:
    return out.replies[0].text


def net(disposition: str, safety: SafetySettings | None = None) -> str:
    flow = shipped_knowledge().triage
    return fill(flow.safety_net[disposition], safety or SafetySettings())


# ------------------------------------------------------------------------------------ 1. over 50 is a flag


async def test_over_50_and_new_asks_the_remaining_questions_and_raises_the_plan(quiet_runtime: Runtime) -> None:
    out, asked = await walk(quiet_runtime.engine, {"history": "I'm over 50"})
    assert asked[-3:] == ["night-pain", "duration", "running-impact"]  # the check goes on
    assert out.kind == "triage" and out.escalation is None
    text = plan(out)
    assert "common running strain" in text  # the plan the answers led to ...
    assert "over 50" in text and "next week or two" in text  # ... with the flag's note
    assert net("see-professional") in text and net("self-care") not in text  # raised to see-professional
    assert any(c.payload == followup_offer("self-care-mild") for r in out.replies for c in r.choices)


async def test_over_50_with_night_pain_stays_urgent(quiet_runtime: Runtime) -> None:
    out, asked = await walk(quiet_runtime.engine, {"history": "I'm over 50", "night-pain": "Yes"})
    assert asked[-2:] == ["history", "night-pain"]
    assert out.escalation == Escalation("urgent", "triage:urgent-night-pain")
    assert "next week or two" not in plan(out)  # the flag's note never softens an urgent plan
    assert plan(out).startswith(URGENT_HEADER)


def test_resolve_raises_to_the_flag_floor_and_never_lowers() -> None:
    flow = shipped_knowledge().triage
    flag = flow.flags["new-over-50"]
    mild = triage.resolve(flow, flow.outcomes["self-care-mild"], frozenset({"new-over-50"}))
    assert (mild.disposition, mild.notes) == ("see-professional", (flag.note,))
    assert triage.plan_paragraphs(flow, mild)[-2:] == [flag.note, flow.safety_net["see-professional"]]
    urgent = triage.resolve(flow, flow.outcomes["urgent-night-pain"], frozenset({"new-over-50"}))
    assert (urgent.disposition, urgent.notes, urgent.followup) == ("urgent", (), False)
    plain = triage.resolve(flow, flow.outcomes["self-care-mild"], frozenset())
    assert plain == flow.outcomes["self-care-mild"]


# ------------------------------------------------------------------------------------ 2. one leg or both


async def test_both_legs_is_an_emergency(quiet_runtime: Runtime) -> None:
    out, asked = await walk(quiet_runtime.engine, {"leg-feeling": "Yes, both legs"})
    assert asked == ["bladder-saddle", "leg-weakness", "leg-feeling"]  # asked third, with the red flags
    assert out.escalation == Escalation("emergency", "triage:emergency-both-legs")
    assert "cauda equina" in plan(out)


async def test_typed_both_legs_and_both_weak_legs_are_emergencies(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    await engine.handle(dm("no"))
    await engine.handle(dm("no"))
    out = await engine.handle(dm("both legs"))
    assert out.escalation == Escalation("emergency", "triage:emergency-both-legs")
    out, _ = await walk(engine, {"leg-weakness": "Yes, both legs"}, user="u2")
    assert out.escalation == Escalation("emergency", "triage:emergency-leg-weakness")


# ------------------------------------------------------------------------------------ 3. one leg is sciatica


async def test_one_leg_tingling_alone_is_self_care_sciatica(quiet_runtime: Runtime) -> None:
    out, asked = await walk(quiet_runtime.engine, {"leg-feeling": "Yes, one leg", "running-impact": "Hurts during"})
    assert "leg-weakness" in asked and "leg-feeling" in asked  # weakness and numbness asked apart
    assert out.kind == "triage" and out.escalation is None
    text = plan(out)
    assert "sciatica" in text and "don't run" not in text.lower()
    assert text.index("sciatica") < text.index(net("self-care"))  # the sciatica plan, then the safety net
    assert any(c.payload == followup_offer("self-care-sciatica") for r in out.replies for c in r.choices)


async def test_one_leg_for_over_six_weeks_is_assessed(quiet_runtime: Runtime) -> None:
    out, _ = await walk(quiet_runtime.engine, {"leg-feeling": "Yes, one leg", "duration": "6 to 12"})
    assert out.escalation is None
    assert "Leg pain, tingling or numbness that has lasted 6 weeks" in plan(out)


async def test_one_weak_leg_is_still_seen_today(quiet_runtime: Runtime) -> None:
    out, _ = await walk(quiet_runtime.engine, {"leg-weakness": "Yes, one leg"})
    assert out.escalation == Escalation("urgent", "triage:urgent-leg-weakness")


# ------------------------------------------------------------------------------------ 4. new red-flag questions


def test_cauda_equina_question_covers_sexual_symptoms_and_wiping() -> None:
    question = shipped_knowledge().triage.steps["bladder-saddle"].question.lower()
    for words in ("peeing", "pooing", "genitals", "bottom", "inner thighs", "wipe", "erection", "ejaculat"):
        assert words in question, words


@pytest.mark.parametrize("label", ["A new lump", "Pain between my shoulder blades"])
async def test_lump_shape_and_thoracic_pain_are_urgent(quiet_runtime: Runtime, label: str) -> None:
    out, _ = await walk(quiet_runtime.engine, {"history": label})
    assert out.escalation == Escalation("urgent", "triage:urgent-spine-check")
    assert "shoulder blades" in plan(out) and "shape of your back" in plan(out)


# ------------------------------------------------------------------------------------ 5. safety net, question count


def test_every_self_care_plan_ends_with_the_safety_net() -> None:
    flow = shipped_knowledge().triage
    text = flow.safety_net["self-care"]
    for words in ("2-3 weeks", "{family_doctor}", "physiotherapist", "{emergency_number}", "both legs", "genitals",
                  "peeing"):
        assert words in text, words
    self_care = [o for o in flow.outcomes.values() if o.disposition == "self-care"]
    assert len(self_care) >= 3
    for outcome in self_care:
        for flags in (frozenset(), frozenset({"one-leg"})):
            resolved = triage.resolve(flow, outcome, flags)
            if resolved.disposition == "self-care":
                assert triage.plan_paragraphs(flow, resolved)[-1] == text, outcome.id


async def test_the_safety_net_is_filled_for_the_region(quiet_runtime: Runtime) -> None:
    out, _ = await walk(quiet_runtime.engine, {})
    assert plan(out).split("\n\n")[-3] == net("self-care", quiet_runtime.settings.safety)
    us = net("self-care", SafetySettings(region="us"))
    assert "911" in us and "999" not in us and "{" not in us


def _longest(flow: triage.TriageFlow) -> int:
    """Every path from the start, walked one by one (independent of the loader's count)."""
    best = 0
    todo = [(flow.start, 1)]
    while todo:
        sid, depth = todo.pop()
        best = max(best, depth)
        todo += [(c.next, depth + 1) for c in flow.steps[sid].choices if c.next]
    return best


async def test_the_question_count_is_the_longest_path(quiet_runtime: Runtime) -> None:
    flow = quiet_runtime.knowledge.current.triage
    assert flow.max_questions == _longest(flow) == 10
    started = await press_agree(quiet_runtime.engine, await quiet_runtime.engine.handle(dm("/triage")), dm("/triage"))
    assert f"up to {flow.max_questions} quick questions" in started.replies[1].text  # after the consent note
    helped = await quiet_runtime.engine.handle(dm("/help"))
    assert f"up to {flow.max_questions} questions" in helped.replies[0].text
    _, asked = await walk(quiet_runtime.engine, {"injury": "Yes, a small fall"}, user="u2")
    assert len(asked) == flow.max_questions


def test_a_wrong_count_in_the_intro_is_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    path = folder / "triage.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("up to 10 quick questions", "up to 7 quick questions"), encoding="utf-8")
    warnings = [str(w) for w in load_knowledge(folder).warnings]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("intro:"))
    assert f"triage.yaml:{line}: warning: the intro says 7 questions, but the longest path through the flow asks " \
        "10" in warnings


# ------------------------------------------------------------------------------------ 6. emergency plans


async def test_emergency_plans_say_what_to_do_while_waiting_under_the_alarm_header(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    alarm = await engine.handle(dm("I can't feel my groin and can't pee", user="free-text"))
    header = alarm.replies[0].text.split("\n\n")[0]
    assert header.startswith("🚨") and "999" in header
    out, _ = await walk(engine, {"bladder-saddle": "Yes"})
    reply = out.replies[0]
    assert reply.text.split("\n\n")[0] == header  # the same header as a free-text alarm
    assert "don't drive yourself" in reply.text and "show it" in reply.text
    assert "worried about cauda equina" in reply.text
    assert reply.choices == () and "Worth reading" not in reply.text
    assert len(out.replies) == 1  # no check-in offer either


def test_no_emergency_plan_offers_reading() -> None:
    k = shipped_knowledge()
    emergencies = [o for o in k.triage.outcomes.values() if o.disposition == "emergency"]
    assert len(emergencies) >= 4
    for outcome in emergencies:
        reply = triage_plan(k, outcome, SafetySettings(), Escalation("emergency", f"triage:{outcome.id}"))
        assert reply.choices == () and "Worth reading" not in reply.text, outcome.id
        assert "don't drive yourself" in reply.text and "{" not in reply.text, outcome.id
    calm = triage_plan(k, k.triage.outcomes["self-care-mild"], SafetySettings(), None)
    assert calm.choices and "Worth reading" in calm.text  # other plans still do


def test_triage_text_uses_placeholders_not_uk_words() -> None:
    k = shipped_knowledge()
    flow = k.triage
    texts = [flow.intro, *flow.safety_net.values(), *(f.note for f in flow.flags.values())]
    texts += [s.question for s in flow.steps.values()] + [c.label for s in flow.steps.values() for c in s.choices]
    texts += [o.text for o in flow.outcomes.values()]
    assert [(t, region_words(t)) for t in texts if region_words(t)] == []
    us = SafetySettings(region="us")
    for outcome in flow.outcomes.values():
        for flags in (frozenset(), frozenset(flow.flags)):
            reply = triage_plan(k, triage.resolve(flow, outcome, flags), us, None).text
            for word in ("999", "A&E", "GP", "NHS", "111", "{"):
                assert word not in reply, (outcome.id, word)


# ------------------------------------------------------------------------------------ the flag mechanism's checks

FLOW = """
flow: {id: t, start: a}
flags:
  - id: f1
    raise_to: urgent
    note: A note.
steps:
  - id: a
    question: Q?
    choices:
      - label: "Yes"
        set: [f1]
        next: b
      - label: "No"
        next: b
  - id: b
    question: Q2?
    choices:
      - label: "Ok"
        outcome: calm
outcomes:
  - id: calm
    disposition: self-care
    text: Calm.
    if_flags:
      f1: serious
  - id: serious
    disposition: see-professional
    text: Serious.
"""


def _parse(text: str) -> tuple[triage.TriageFlow | None, list[str]]:
    flow, problems = parse_triage(load_text(text, "triage.yaml"), "triage.yaml")
    return flow, [str(p) for p in problems]


def test_a_flag_set_by_a_choice_redirects_and_raises_the_outcome() -> None:
    flow, problems = _parse(FLOW)
    assert flow is not None
    assert problems == ["triage.yaml:2: warning: no 'safety_net' for self-care: self-care plans end without when to "
                        "get help"]
    state = triage.step(flow, triage.start(flow).state, 0).state  # type: ignore[arg-type]
    result = triage.step(flow, state, 0)  # type: ignore[arg-type]
    assert result.outcome is not None
    assert (result.outcome.id, result.outcome.disposition, result.outcome.notes) == ("serious", "urgent", ("A note.",))
    state = triage.step(flow, triage.start(flow).state, 1).state  # type: ignore[arg-type]
    calm = triage.step(flow, state, 0).outcome  # type: ignore[arg-type]
    assert calm is not None and (calm.id, calm.disposition, calm.notes) == ("calm", "self-care", ())
    assert flow.max_questions == 2


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("set: [f1]", "set: [f2]", "triage.yaml:12: flag 'f2' is not declared under 'flags'"),
        ("f1: serious", "f1: nowhere", "triage.yaml:26: 'if_flags' points at outcome 'nowhere', which does not exist"),
        ("disposition: see-professional", "disposition: self-care\n    if_flags: {f1: calm}",
         "triage.yaml:22: 'if_flags' of outcome 'calm' leads back to itself"),
        ("disposition: self-care", "disposition: urgent",
         "triage.yaml:26: 'if_flags' of 'calm' leads to the milder outcome 'serious' (see-professional): flags may "
         "only raise a plan"),
        ("raise_to: urgent", "raise_to: soon", "triage.yaml:5: raise_to 'soon' must be one of emergency, urgent, "
         "see-professional, self-care"),
        ("    raise_to: urgent\n", "",
         "triage.yaml:5: the note of flag 'f1' is never shown: give the flag a 'raise_to'"),
        ("outcome: calm", "next: a", "triage.yaml:8: step 'a' can lead back to itself: the check would never end"),
        ("\nflags:\n", "\nsafety_net: {soon: Text.}\nflags:\n",
         "triage.yaml:3: safety_net key 'soon' must be one of emergency, urgent, see-professional, self-care"),
    ],
)
def test_flag_mistakes_are_errors_with_lines(old: str, new: str, expected: str) -> None:
    assert FLOW.count(old) == 1
    flow, problems = _parse(FLOW.replace(old, new))
    assert flow is None
    assert expected in problems, problems


def test_shipped_flow_loads_without_triage_warnings() -> None:
    k = shipped_knowledge()
    assert [w for w in k.warnings if w.file == "triage.yaml"] == []
    assert set(k.triage.flags) == {"new-over-50", "one-leg"}


def test_a_broken_flag_in_the_shipped_file_stops_the_load(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    path = folder / "triage.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("set: [one-leg]", "set: [one-legg]"), encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(folder)
    assert any("flag 'one-legg' is not declared" in str(p) and p.file == "triage.yaml" for p in err.value.problems)
