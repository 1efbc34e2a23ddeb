"""Loading triage.yaml: validation with ``file:line`` problems, reference and cycle checks, the longest path."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.core.schema import KEBAB, Checker
from bot.core.triage import (
    DISPOSITIONS,
    MAX_STEP_ID,
    SEVERITY,
    TriageChoice,
    TriageFlag,
    TriageFlow,
    TriageOutcome,
    TriageStep,
)
from bot.core.yamlio import LDict, LList, Problem

#: "up to 10 quick questions" in the intro: the number is checked against the longest path through the flow
_COUNT_IN_INTRO = re.compile(r"\b(\d+)\s+(?:\w+\s+)?questions?\b", re.IGNORECASE)


def _parse_outcome(ck: Checker, o: LDict, where: str) -> tuple[TriageOutcome | None, list[tuple[int, str, str]]]:
    """The outcome and its references: ``(line, "flag", flag id)`` and ``(line, "raise", target outcome id)``."""
    ck.keys(o, where, {"id", "disposition", "text"}, {"faq", "followup", "if_flags"})
    oid = ck.text(o, "id", where)
    disposition = ck.text(o, "disposition", where)
    text = ck.text(o, "text", where)
    faq = ck.text_list(o, "faq", where)
    followup = ck.boolean(o, "followup", where)
    refs: list[tuple[int, str, str]] = []
    rules: list[tuple[str, str]] = []
    raw = o.get("if_flags")
    if "if_flags" in o and not isinstance(raw, LDict):
        ck.error(o.line_of("if_flags"), f"'if_flags' in {where} must be a mapping: flag-id: outcome-id")
    for flag in raw if isinstance(raw, LDict) else {}:
        target = ck.text(raw, flag, f"'if_flags' of {where}")
        if target is not None:
            rules.append((flag, target))
            refs += [(raw.line_of(flag), "flag", flag), (raw.line_of(flag), "raise", target)]
    if disposition is not None and disposition not in DISPOSITIONS:
        ck.error(o.line_of("disposition"), f"disposition '{disposition}' must be one of {', '.join(DISPOSITIONS)}")
    if oid is None or text is None or disposition not in DISPOSITIONS:
        return None, refs
    if followup is None:
        followup = disposition in ("self-care", "see-professional")
    return TriageOutcome(oid, disposition, text, faq, followup, line=o.line, if_flags=tuple(rules)), refs


def _parse_step(ck: Checker, s: LDict, where: str) -> tuple[TriageStep | None, list[tuple[int, str, str]]]:
    ck.keys(s, where, {"id", "question", "choices"}, set())
    sid = ck.text(s, "id", where)
    question = ck.text(s, "question", where)
    if sid is not None and (not KEBAB.match(sid) or len(sid) > MAX_STEP_ID):
        ck.error(s.line_of("id"), f"step id '{sid}' must be kebab-case and at most {MAX_STEP_ID} characters")
        sid = None
    raw_choices = s.get("choices")
    choices: list[TriageChoice] = []
    refs: list[tuple[int, str, str]] = []
    if "choices" in s and (not isinstance(raw_choices, LList) or not raw_choices):
        ck.error(s.line_of("choices"), f"'choices' in {where} must be a non-empty list")
    for j, c_item in enumerate(raw_choices if isinstance(raw_choices, LList) else []):
        c_where = f"choice #{j + 1} of {where}"
        c = ck.mapping(c_item, c_where, raw_choices.line_of(j))
        if c is None:
            continue
        ck.keys(c, c_where, {"label"}, {"next", "outcome", "set"})
        label = ck.text(c, "label", c_where)
        nxt = ck.text(c, "next", c_where)
        out = ck.text(c, "outcome", c_where)
        sets = ck.text_list(c, "set", c_where)
        refs += [(c.line_of("set"), "flag", f) for f in sets]
        if (nxt is None) == (out is None):
            ck.error(c.line, f"{c_where} needs exactly one of 'next' (a step id) or 'outcome' (an outcome id)")
            continue
        refs.append((c.line_of("next"), "step", nxt) if nxt is not None else (c.line_of("outcome"), "outcome", out))
        if label is not None:
            choices.append(TriageChoice(label, nxt, out, sets))
    if sid is None or question is None:
        return None, refs
    return TriageStep(sid, question, tuple(choices), line=s.line), refs


def _parse_flag(ck: Checker, f: LDict, where: str) -> TriageFlag | None:
    ck.keys(f, where, {"id"}, {"raise_to", "note"})
    fid = ck.text(f, "id", where)
    raise_to = ck.text(f, "raise_to", where)
    note = ck.text(f, "note", where) or ""
    if raise_to is not None and raise_to not in DISPOSITIONS:
        ck.error(f.line_of("raise_to"), f"raise_to '{raise_to}' must be one of {', '.join(DISPOSITIONS)}")
        raise_to, note = None, ""  # declared all the same, so the choices that set it raise no second error
    elif note and raise_to is None:
        ck.error(f.line_of("note"), f"the note of flag '{fid}' is never shown: give the flag a 'raise_to'")
    if fid is not None and not KEBAB.match(fid):
        ck.error(f.line_of("id"), f"flag id '{fid}' must be kebab-case")
        return None
    return TriageFlag(fid, raise_to, note, line=f.line) if fid is not None else None


def _items(ck: Checker, root: LDict, key: str) -> list[tuple[LDict, str]]:
    """The mappings of the list ``key`` of the root, each with its "outcome #3"-style name."""
    raw = root.get(key)
    if key in root and not isinstance(raw, LList):
        ck.error(root.line_of(key), f"'{key}' must be a list")
        return []
    out = []
    for i, item in enumerate(raw if isinstance(raw, LList) else []):
        where = f"{key[:-1]} #{i + 1}"
        m = ck.mapping(item, where, raw.line_of(i))
        if m is not None:
            out.append((m, where))
    return out


def _safety_net(ck: Checker, root: LDict) -> dict[str, str]:
    raw = root.get("safety_net")
    if "safety_net" in root and not isinstance(raw, LDict):
        ck.error(root.line_of("safety_net"), "'safety_net' must be a mapping: disposition: text")
        return {}
    out: dict[str, str] = {}
    for key in raw if isinstance(raw, LDict) else {}:
        if key not in DISPOSITIONS:
            ck.error(raw.line_of(key), f"safety_net key '{key}' must be one of {', '.join(DISPOSITIONS)}")
            continue
        text = ck.text(raw, key, "'safety_net'")
        if text is not None:
            out[key] = text
    return out


def parse(data: Any, file: str) -> tuple[TriageFlow | None, list[Problem]]:
    """Validate triage.yaml and build the flow; every problem carries its line."""
    ck = Checker(file)
    root = ck.mapping(data, "the triage file", 1)
    if root is None:
        return None, ck.problems
    ck.keys(root, "the triage file", {"flow", "steps", "outcomes"}, {"flags", "safety_net"})
    flow_meta = ck.mapping(root.get("flow"), "'flow'", root.line_of("flow")) if "flow" in root else None
    flow_id = title = intro = start_id = None
    if flow_meta is not None:
        ck.keys(flow_meta, "'flow'", {"id", "start"}, {"title", "intro"})
        flow_id = ck.text(flow_meta, "id", "'flow'")
        title = ck.text(flow_meta, "title", "'flow'") or "Back pain check"
        intro = ck.text(flow_meta, "intro", "'flow'", required=False) or ""
        start_id = ck.text(flow_meta, "start", "'flow'")
    safety_net = _safety_net(ck, root)
    flags: dict[str, TriageFlag] = {}
    for f, where in _items(ck, root, "flags"):
        flag = _parse_flag(ck, f, where)
        if flag is not None and flag.id in flags:
            ck.error(f.line_of("id"), f"duplicate flag id '{flag.id}'")
        elif flag is not None:
            flags[flag.id] = flag
    refs: list[tuple[int, str, str]] = []  # (line, kind, id)
    raises: list[tuple[int, str, str]] = []  # (line, outcome id, the outcome its if_flags leads to)
    outcomes: dict[str, TriageOutcome] = {}
    for o, where in _items(ck, root, "outcomes"):
        outcome, found = _parse_outcome(ck, o, where)
        refs += [r for r in found if r[1] == "flag"]
        if outcome is not None:
            raises += [(line, outcome.id, ref) for line, kind, ref in found if kind == "raise"]
        if outcome is not None and outcome.id in outcomes:
            ck.error(o.line_of("id"), f"duplicate outcome id '{outcome.id}'")
        elif outcome is not None:
            outcomes[outcome.id] = outcome
    steps: dict[str, TriageStep] = {}
    for s, where in _items(ck, root, "steps"):
        parsed, found = _parse_step(ck, s, where)
        refs += found
        if parsed is not None and parsed.id in steps:
            ck.error(s.line_of("id"), f"duplicate step id '{parsed.id}'")
        elif parsed is not None:
            steps[parsed.id] = parsed
    _check_refs(ck, refs, steps, outcomes, flags)
    _check_raises(ck, raises, outcomes)
    if start_id is not None and start_id not in steps and flow_meta is not None:
        ck.error(flow_meta.line_of("start"), f"start step '{start_id}' does not exist")
    if any(p.severity == "error" for p in ck.problems) or flow_id is None or start_id is None:
        return None, ck.problems
    flow = TriageFlow(flow_id, title or "", intro or "", start_id, steps, outcomes, flags, safety_net)
    longest = _longest_path(flow, ck)
    if longest is None:
        return None, ck.problems
    if "self-care" not in safety_net and any(o.disposition == "self-care" for o in outcomes.values()):
        ck.warn(root.line, "no 'safety_net' for self-care: self-care plans end without when to get help")
    stated = _COUNT_IN_INTRO.search(intro or "")
    if stated is not None and int(stated.group(1)) != longest and flow_meta is not None:
        ck.warn(flow_meta.line_of("intro"), f"the intro says {stated.group(1)} questions, but the longest path "
                f"through the flow asks {longest}")
    return replace(flow, max_questions=longest), ck.problems


def _check_refs(
    ck: Checker,
    refs: list[tuple[int, str, str]],
    steps: dict[str, TriageStep],
    outcomes: dict[str, TriageOutcome],
    flags: dict[str, TriageFlag],
) -> None:
    for line, kind, ref in refs:
        if kind == "step" and ref not in steps:
            ck.error(line, f"choice points at step '{ref}', which does not exist")
        if kind == "outcome" and ref not in outcomes:
            ck.error(line, f"choice points at outcome '{ref}', which does not exist")
        if kind == "flag" and ref not in flags:
            ck.error(line, f"flag '{ref}' is not declared under 'flags'")


def _check_raises(ck: Checker, raises: list[tuple[int, str, str]], outcomes: dict[str, TriageOutcome]) -> None:
    """``if_flags`` targets exist, are not milder than their source, and no chain of them comes back round."""
    for line, source, target in raises:
        if target not in outcomes:
            ck.error(line, f"'if_flags' points at outcome '{target}', which does not exist")
        elif SEVERITY[outcomes[target].disposition] < SEVERITY[outcomes[source].disposition]:
            ck.error(line, f"'if_flags' of '{source}' leads to the milder outcome '{target}' "
                     f"({outcomes[target].disposition}): flags may only raise a plan")
    for oid, outcome in outcomes.items():  # if_flags chains must end
        seen = [oid]
        todo = [to for _, to in outcome.if_flags]
        while todo:
            nxt = todo.pop()
            if nxt == oid:
                ck.error(outcome.line, f"'if_flags' of outcome '{oid}' leads back to itself")
                break
            if nxt in outcomes and nxt not in seen:
                seen.append(nxt)
                todo += [to for _, to in outcomes[nxt].if_flags]


def _longest_path(flow: TriageFlow, ck: Checker) -> int | None:
    """The most questions any run can ask (steps from the start to an outcome); None after a cycle error."""
    memo: dict[str, int] = {}
    active: set[str] = set()

    def depth(sid: str) -> int | None:
        if sid in memo:
            return memo[sid]
        if sid in active:
            ck.error(flow.steps[sid].line, f"step '{sid}' can lead back to itself: the check would never end")
            return None
        active.add(sid)
        best = 0
        for c in flow.steps[sid].choices:
            below = depth(c.next) if c.next else 0
            if below is None:
                return None
            best = max(best, below)
        active.discard(sid)
        memo[sid] = best + 1
        return memo[sid]

    return depth(flow.start)


