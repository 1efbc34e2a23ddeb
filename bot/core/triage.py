"""The triage flow: parsed from YAML, run as a pure state machine ``step(flow, state, answer)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz, process

from bot.core.schema import KEBAB, Checker
from bot.core.text import normalize
from bot.core.yamlio import LList, Problem

Disposition = Literal["emergency", "urgent", "see-professional", "self-care"]
DISPOSITIONS: tuple[str, ...] = ("emergency", "urgent", "see-professional", "self-care")
PAYLOAD_PREFIX = "tri"
MAX_STEP_ID = 40


@dataclass(frozen=True, slots=True)
class TriageChoice:
    """One answer to a step: leads to another step or to an outcome."""

    label: str
    next: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class TriageStep:
    """A question with its choices."""

    id: str
    question: str
    choices: tuple[TriageChoice, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    """Where the flow ends: a disposition, a plan text, FAQ entries to read and whether to offer a check-in."""

    id: str
    disposition: str
    text: str
    faq: tuple[str, ...]
    followup: bool
    line: int = 0


@dataclass(frozen=True, slots=True)
class TriageFlow:
    """The whole flow."""

    id: str
    title: str
    intro: str
    start: str
    steps: dict[str, TriageStep]
    outcomes: dict[str, TriageOutcome]


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


def choice_payload(step_id: str, index: int) -> str:
    return f"{PAYLOAD_PREFIX}:{step_id}:{index}"


def parse_choice_payload(payload: str) -> tuple[str, int] | None:
    parts = payload.split(":")
    if len(parts) != 3 or parts[0] != PAYLOAD_PREFIX or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


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
        return StepResult(None, outcome=flow.outcomes[choice.outcome])
    assert choice.next is not None
    return StepResult(TriageState(flow.id, choice.next, answers), step=flow.steps[choice.next])


_YES = {"yes", "y", "yeah", "yep", "yup", "ya", "yea", "sure", "correct", "true", "definitely", "i do", "it does"}
_NO = {"no", "n", "nope", "nah", "none", "not really", "never", "no way", "i dont", "it doesnt", "neither"}


def match_answer(step_: TriageStep, text: str) -> int | None:
    """Map typed text to a choice of the step: its number, yes/no words, or a fuzzy match of the label."""
    norm = normalize(text)
    if not norm:
        return None
    if norm.isdigit():
        number = int(norm)
        return number - 1 if 1 <= number <= len(step_.choices) else None
    labels = [normalize(c.label) for c in step_.choices]
    for i, label in enumerate(labels):
        if norm == label:
            return i
    first_words = [label.split()[0] if label else "" for label in labels]
    for words, key in ((_YES, "yes"), (_NO, "no")):
        if norm in words or (norm.split()[0] in words and len(norm.split()) <= 3):
            if key in first_words:
                return first_words.index(key)
    best = process.extractOne(norm, labels, scorer=fuzz.WRatio, score_cutoff=80)
    if best is None:
        return None
    second = process.extract(norm, labels, scorer=fuzz.WRatio, limit=2)
    if len(second) > 1 and second[1][1] >= best[1] - 3:
        return None  # ambiguous: ask again rather than guess
    return int(best[2])


def parse_triage(data: Any, file: str) -> tuple[TriageFlow | None, list[Problem]]:
    """Validate triage.yaml and build the flow; every problem carries its line."""
    ck = Checker(file)
    root = ck.mapping(data, "the triage file", 1)
    if root is None:
        return None, ck.problems
    ck.keys(root, "the triage file", {"flow", "steps", "outcomes"}, set())
    flow_meta = ck.mapping(root.get("flow"), "'flow'", root.line_of("flow")) if "flow" in root else None
    flow_id = title = intro = start_id = None
    if flow_meta is not None:
        ck.keys(flow_meta, "'flow'", {"id", "start"}, {"title", "intro"})
        flow_id = ck.text(flow_meta, "id", "'flow'")
        title = ck.text(flow_meta, "title", "'flow'") or "Back pain check"
        intro = ck.text(flow_meta, "intro", "'flow'", required=False) or ""
        start_id = ck.text(flow_meta, "start", "'flow'")
    steps: dict[str, TriageStep] = {}
    outcomes: dict[str, TriageOutcome] = {}
    pending_refs: list[tuple[int, str, str]] = []  # (line, kind, id)

    raw_outcomes = root.get("outcomes")
    if "outcomes" in root and not isinstance(raw_outcomes, LList):
        ck.error(root.line_of("outcomes"), "'outcomes' must be a list")
    for i, item in enumerate(raw_outcomes if isinstance(raw_outcomes, LList) else []):
        where = f"outcome #{i + 1}"
        o = ck.mapping(item, where, raw_outcomes.line_of(i))
        if o is None:
            continue
        ck.keys(o, where, {"id", "disposition", "text"}, {"faq", "followup"})
        oid = ck.text(o, "id", where)
        disposition = ck.text(o, "disposition", where)
        text = ck.text(o, "text", where)
        faq = ck.text_list(o, "faq", where)
        followup = ck.boolean(o, "followup", where)
        if disposition is not None and disposition not in DISPOSITIONS:
            ck.error(o.line_of("disposition"), f"disposition '{disposition}' must be one of {', '.join(DISPOSITIONS)}")
        if oid is None or text is None or disposition not in DISPOSITIONS:
            continue
        if oid in outcomes:
            ck.error(o.line_of("id"), f"duplicate outcome id '{oid}'")
            continue
        if followup is None:
            followup = disposition in ("self-care", "see-professional")
        outcomes[oid] = TriageOutcome(oid, disposition, text, faq, followup, line=o.line)

    raw_steps = root.get("steps")
    if "steps" in root and not isinstance(raw_steps, LList):
        ck.error(root.line_of("steps"), "'steps' must be a list")
    for i, item in enumerate(raw_steps if isinstance(raw_steps, LList) else []):
        where = f"step #{i + 1}"
        s = ck.mapping(item, where, raw_steps.line_of(i))
        if s is None:
            continue
        ck.keys(s, where, {"id", "question", "choices"}, set())
        sid = ck.text(s, "id", where)
        question = ck.text(s, "question", where)
        if sid is not None and (not KEBAB.match(sid) or len(sid) > MAX_STEP_ID):
            ck.error(s.line_of("id"), f"step id '{sid}' must be kebab-case and at most {MAX_STEP_ID} characters")
            sid = None
        raw_choices = s.get("choices")
        choices: list[TriageChoice] = []
        if "choices" in s and (not isinstance(raw_choices, LList) or not raw_choices):
            ck.error(s.line_of("choices"), f"'choices' in {where} must be a non-empty list")
        for j, c_item in enumerate(raw_choices if isinstance(raw_choices, LList) else []):
            c_where = f"choice #{j + 1} of {where}"
            c = ck.mapping(c_item, c_where, raw_choices.line_of(j))
            if c is None:
                continue
            ck.keys(c, c_where, {"label"}, {"next", "outcome"})
            label = ck.text(c, "label", c_where)
            nxt = ck.text(c, "next", c_where)
            out = ck.text(c, "outcome", c_where)
            if (nxt is None) == (out is None):
                ck.error(c.line, f"{c_where} needs exactly one of 'next' (a step id) or 'outcome' (an outcome id)")
                continue
            if nxt is not None:
                pending_refs.append((c.line_of("next"), "step", nxt))
            if out is not None:
                pending_refs.append((c.line_of("outcome"), "outcome", out))
            if label is not None:
                choices.append(TriageChoice(label, nxt, out))
        if sid is None or question is None:
            continue
        if sid in steps:
            ck.error(s.line_of("id"), f"duplicate step id '{sid}'")
            continue
        steps[sid] = TriageStep(sid, question, tuple(choices), line=s.line)

    for line, kind, ref in pending_refs:
        if kind == "step" and ref not in steps:
            ck.error(line, f"choice points at step '{ref}', which does not exist")
        if kind == "outcome" and ref not in outcomes:
            ck.error(line, f"choice points at outcome '{ref}', which does not exist")
    if start_id is not None and start_id not in steps and flow_meta is not None:
        ck.error(flow_meta.line_of("start"), f"start step '{start_id}' does not exist")
    if any(p.severity == "error" for p in ck.problems) or flow_id is None or start_id is None:
        return None, ck.problems
    flow = TriageFlow(flow_id, title or "", intro or "", start_id, steps, outcomes)
    return flow, ck.problems


def reachable(flow: TriageFlow) -> tuple[set[str], set[str]]:
    """Step ids and outcome ids reachable from the start (for the lint)."""
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
    return seen_steps, seen_outcomes
