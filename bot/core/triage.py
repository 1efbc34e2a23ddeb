"""The triage flow: parsed from YAML, run as a pure state machine ``step(flow, state, answer)``.

Answers can set **flags** (``set: [flag]`` on a choice). When the flow reaches an outcome, the flags set along the
way decide the plan: an outcome's ``if_flags`` sends it on to another outcome (never a milder one), and a flag's
``raise_to`` keeps the plan at least that disposition and adds the flag's ``note``. ``safety_net`` texts close
every plan of their disposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from bot.core import triage_answers

if TYPE_CHECKING:
    pass

Disposition = Literal["emergency", "urgent", "see-professional", "self-care"]
DISPOSITIONS: tuple[str, ...] = ("emergency", "urgent", "see-professional", "self-care")
#: how serious a disposition is: a flag or an ``if_flags`` rule may only move a plan up this scale
SEVERITY: dict[str, int] = {d: len(DISPOSITIONS) - i for i, d in enumerate(DISPOSITIONS)}
MAX_STEP_ID = 40


@dataclass(frozen=True, slots=True)
class TriageChoice:
    """One answer to a step: leads to another step or to an outcome, and may set flags on the way."""

    label: str
    next: str | None = None
    outcome: str | None = None
    sets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TriageStep:
    """A question with its choices."""

    id: str
    question: str
    choices: tuple[TriageChoice, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    """Where the flow ends: a disposition, a plan text, FAQ entries to read and whether to offer a check-in.

    ``if_flags`` maps a flag to the outcome used instead when that flag is set; ``notes`` are the flags' notes added
    when the flow resolved this outcome (empty in the parsed flow).
    """

    id: str
    disposition: str
    text: str
    faq: tuple[str, ...]
    followup: bool
    line: int = 0
    if_flags: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TriageFlag:
    """Something an answer noted about the runner: it can raise the final plan and add a note to it."""

    id: str
    raise_to: str | None = None
    note: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class TriageFlow:
    """The whole flow; ``max_questions`` is the longest path from the start to an outcome."""

    id: str
    title: str
    intro: str
    start: str
    steps: dict[str, TriageStep]
    outcomes: dict[str, TriageOutcome]
    flags: dict[str, TriageFlag] = field(default_factory=dict)
    safety_net: dict[str, str] = field(default_factory=dict)
    max_questions: int = 0


@dataclass(frozen=True, slots=True)
class TriageState:
    """Where a user is in the flow: the current step and the answers given so far (step id, choice index)."""

    flow_id: str
    step_id: str
    answers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one answer did: the new state (None when the flow ended) and what to show next."""

    state: TriageState | None
    step: TriageStep | None = None
    outcome: TriageOutcome | None = None
    understood: bool = True


def start(flow: TriageFlow) -> StepResult:
    """Begin the flow at its first step."""
    return StepResult(TriageState(flow.id, flow.start), step=flow.steps[flow.start])


def step(flow: TriageFlow, state: TriageState, index: int) -> StepResult:
    """Apply the answer ``index`` to the current step. An index out of range is not understood."""
    current = flow.steps.get(state.step_id)
    if current is None or state.flow_id != flow.id:
        return StepResult(None, understood=False)
    if not 0 <= index < len(current.choices):
        return StepResult(state, step=current, understood=False)
    choice = current.choices[index]
    answers = (*state.answers, (current.id, index))
    if choice.outcome is not None:
        return StepResult(None, outcome=resolve(flow, flow.outcomes[choice.outcome], flags_of(flow, answers)))
    assert choice.next is not None
    return StepResult(TriageState(flow.id, choice.next, answers), step=flow.steps[choice.next])


def flags_of(flow: TriageFlow, answers: tuple[tuple[str, int], ...]) -> frozenset[str]:
    """The flags the answers set (answers that no longer fit the flow, after a reload, set nothing)."""
    out: set[str] = set()
    for step_id, index in answers:
        s = flow.steps.get(step_id)
        if s is not None and 0 <= index < len(s.choices):
            out.update(s.choices[index].sets)
    return frozenset(out)


def resolve(flow: TriageFlow, outcome: TriageOutcome, flags: frozenset[str]) -> TriageOutcome:
    """The plan for ``outcome`` given the flags: follow ``if_flags``, then apply each set flag's ``raise_to``.

    A flag's note is added when the plan is not already more serious than the flag's ``raise_to``; a plan raised to
    urgent or emergency offers no check-in.
    """
    for _ in range(len(flow.outcomes)):  # the loader rejects cycles; the bound is a second guard
        target = next((to for flag, to in outcome.if_flags if flag in flags), None)
        if target is None:
            break
        outcome = flow.outcomes[target]
    disposition = outcome.disposition
    notes: list[str] = []
    for flag in flow.flags.values():
        if flag.id not in flags or flag.raise_to is None or SEVERITY[outcome.disposition] > SEVERITY[flag.raise_to]:
            continue
        if SEVERITY[flag.raise_to] > SEVERITY[disposition]:
            disposition = flag.raise_to
        if flag.note:
            notes.append(flag.note)
    followup = outcome.followup and disposition in ("self-care", "see-professional")
    return replace(outcome, disposition=disposition, notes=tuple(notes), followup=followup)


def plan_paragraphs(flow: TriageFlow, outcome: TriageOutcome) -> list[str]:
    """The plan text of a resolved outcome: its text, the flags' notes, then the safety net of its disposition."""
    net = flow.safety_net.get(outcome.disposition, "")
    return [p.strip() for p in (outcome.text, *outcome.notes, net) if p.strip()]


def match_answer(step_: TriageStep, text: str) -> int | None:
    """The choice of ``step_`` that typed ``text`` means, or None when it is unclear (see triage_answers)."""
    return triage_answers.match_answer([c.label for c in step_.choices], text)


def reask_hint(step_: TriageStep, text: str) -> str:
    """The line shown before the step is asked again after ``text`` was not understood."""
    return triage_answers.reask_hint([c.label for c in step_.choices], text)


def reachable(flow: TriageFlow) -> tuple[set[str], set[str]]:
    """Step ids and outcome ids reachable from the start, ``if_flags`` included (for the lint)."""
    seen_steps: set[str] = set()
    seen_outcomes: set[str] = set()
    todo = [flow.start]
    while todo:
        sid = todo.pop()
        if sid in seen_steps or sid not in flow.steps:
            continue
        seen_steps.add(sid)
        for c in flow.steps[sid].choices:
            if c.next:
                todo.append(c.next)
            if c.outcome:
                seen_outcomes.add(c.outcome)
    more = list(seen_outcomes)
    while more:
        o = flow.outcomes.get(more.pop())
        for _, to in o.if_flags if o else ():
            if to not in seen_outcomes:
                seen_outcomes.add(to)
                more.append(to)
    return seen_steps, seen_outcomes
