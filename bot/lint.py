"""`runbot check`: schema errors plus the moderators' lint — collisions, thin entries, long answers, examples."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.core.analysis import Analyzer
from bot.core.faq import Candidate
from bot.core.knowledge import Knowledge, KnowledgeError, load_knowledge
from bot.core.triage import reachable
from bot.core.yamlio import Problem

PLATFORM_LIMIT = 2000  # Discord's message limit, the smaller of the two platforms
MIN_PHRASINGS = 3


def _warn(file: str, line: int, message: str) -> Problem:
    return Problem(file, line, message, severity="warning")


def lint(k: Knowledge, settings: Settings) -> list[Problem]:
    """Warnings about valid knowledge that will still behave badly, and errors for failing examples."""
    out: list[Problem] = list(k.warnings)
    confident = settings.matching.confident
    for entry in k.entries.values():
        if len(entry.questions) < MIN_PHRASINGS:
            out.append(_warn(entry.file, entry.line, f"entry '{entry.id}' has {len(entry.questions)} phrasing(s); "
                             f"give it at least {MIN_PHRASINGS} so runners' wordings find it"))
        body = len(entry.title) + len(entry.answer) + len(entry.source or "") + 80
        if body > PLATFORM_LIMIT:
            out.append(_warn(entry.file, entry.line, f"answer of '{entry.id}' is about {body} characters with its "
                             f"title and source; over {PLATFORM_LIMIT} it is split into several Discord messages"))
        for question in entry.questions:
            top = k.matcher.match(question, limit=1)
            if top and top[0].id != entry.id and top[0].confidence >= confident:
                other = k.entries[top[0].id]
                out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' matches "
                                 f"'{other.id}' ({other.file}:{other.line}) at {top[0].confidence:.0f}: the bot "
                                 "cannot tell these apart"))
        for example in entry.examples:
            top = k.matcher.match(example, limit=2)
            if not top or not _confident(top, settings):
                out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' gets no confident "
                                   "answer"))
            elif top[0].id != entry.id:
                out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' lands on "
                                   f"'{top[0].id}' instead"))
    used: set[str] = set()
    plain = Analyzer({})
    for entry in k.entries.values():
        for text in (*entry.questions, *entry.keywords, entry.title):
            used.update(k.analyzer.stems(text))
    for canonical in k.synonyms:
        target = plain.stems(canonical)
        if target and not set(target) <= used:
            out.append(_warn("synonyms.yaml", 1, f"synonym target '{canonical}' is not used by any FAQ phrasing or "
                             "keyword, so its variants lead nowhere"))
    steps, outcomes = reachable(k.triage)
    for step in k.triage.steps.values():
        if step.id not in steps:
            out.append(_warn("triage.yaml", step.line, f"step '{step.id}' cannot be reached from the start"))
    for outcome in k.triage.outcomes.values():
        if outcome.id not in outcomes:
            out.append(_warn("triage.yaml", outcome.line, f"outcome '{outcome.id}' cannot be reached"))
        if not outcome.faq:
            out.append(_warn("triage.yaml", outcome.line, f"outcome '{outcome.id}' links no FAQ entry"))
    return out


def _confident(candidates: list[Candidate], settings: Settings) -> bool:
    m = settings.matching
    top = candidates[0].confidence
    second = candidates[1].confidence if len(candidates) > 1 else 0.0
    return top >= m.confident or (top >= m.likely and top - second >= m.margin)


def check_folder(folder: Path, settings: Settings) -> list[Problem]:
    """Every problem in a knowledge folder: load errors, or lint warnings and example failures."""
    try:
        k = load_knowledge(folder)
    except KnowledgeError as exc:
        return exc.problems
    return lint(k, settings)
