"""`runbot check`: schema errors plus the moderators' lint — collisions, thin entries, long answers, examples."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.config import Settings
from bot.core import placeholders, replies
from bot.core.analysis import STOP_STEMS, Analyzer
from bot.core.decision import decide
from bot.core.knowledge import CHATTER_FILE, CHATTER_ID, Knowledge, KnowledgeError, load_knowledge
from bot.core.red_flags import Assessment, RedFlagCategory
from bot.core.settings import MatchingSettings
from bot.core.text import normalize
from bot.core.triage import reachable
from bot.core.yamlio import Problem

#: the smallest message limit of the platforms (Discord 2,000; Telegram 4,096): longer answers are split
PLATFORM_LIMIT = 2000
MIN_PHRASINGS = 3
#: two phrasings of different entries this alike (token-sorted wording, 0-100) are near-copies
NEAR_COPY = 92.0
#: another entry scoring a phrasing this close to its own entry (or above it) is a collision
TIE_POINTS = 3.0


def _warn(file: str, line: int, message: str) -> Problem:
    return Problem(file, line, message, severity="warning")


def lint(k: Knowledge, settings: Settings) -> list[Problem]:
    """Warnings about valid knowledge that will still behave badly, and errors for failing examples."""
    out: list[Problem] = list(k.warnings)
    for entry in k.entries.values():
        if len(entry.questions) < MIN_PHRASINGS:
            out.append(_warn(entry.file, entry.line, f"entry '{entry.id}' has {len(entry.questions)} phrasing(s); "
                             f"give it at least {MIN_PHRASINGS} so runners' wordings find it"))
        size = len(replies.answer(entry, k, settings.safety).text)
        if size > PLATFORM_LIMIT:
            out.append(_warn(entry.file, entry.line, f"answer of '{entry.id}' is {size} characters with its title, "
                             f"source and notice; over {PLATFORM_LIMIT} it is split into several Discord messages"))
        out.extend(_examples(k, entry.id, settings))
    out.extend(_collisions(k, settings))
    out.extend(phrasings(k, settings))
    out.extend(near_copies(k))
    out.extend(_synonyms(k))
    out.extend(_triage(k))
    out.extend(red_flag_examples(k))
    out.extend(localisation(k))
    return out


#: how the bot uses a piece of knowledge text: shown with placeholders filled, shown as written (titles, button
#: labels), or only matched against runners' messages (phrasings, keywords, examples)
FILLED, SHOWN, MATCHED = "filled", "shown", "matched"


def _texts(k: Knowledge) -> list[tuple[str, int, str, str, str]]:
    """Every piece of knowledge text with its file, line, a name for it and how the bot uses it."""
    out: list[tuple[str, int, str, str, str]] = []
    for e in k.entries.values():
        out.append((e.file, e.line, f"the answer of '{e.id}'", e.answer, FILLED))
        out.append((e.file, e.line, f"the title of '{e.id}'", e.title, SHOWN))
        for what, items in (("phrasing", e.questions), ("keyword", e.keywords), ("example", e.examples)):
            out += [(e.file, e.line, f"{what} {text!r} of '{e.id}'", text, MATCHED) for text in items]
    flow = k.triage
    out.append(("triage.yaml", 1, "the triage title", flow.title, FILLED))
    out.append(("triage.yaml", 1, "the triage intro", flow.intro, FILLED))
    for step in flow.steps.values():
        out.append(("triage.yaml", step.line, f"the question of step '{step.id}'", step.question, FILLED))
        out += [("triage.yaml", step.line, f"choice {c.label!r} of step '{step.id}'", c.label, SHOWN)
                for c in step.choices]
    for o in flow.outcomes.values():
        out.append(("triage.yaml", o.line, f"the text of outcome '{o.id}'", o.text, FILLED))
    for flag in flow.flags.values():
        out.append(("triage.yaml", flag.line, f"the note of flag '{flag.id}'", flag.note, FILLED))
    for disposition, net in flow.safety_net.items():
        out.append(("triage.yaml", 1, f"the safety net of {disposition} plans", net, FILLED))
    for cat in k.red_flags.categories.values():
        out.append((cat.file, cat.line, f"the message of red flag '{cat.id}'", cat.message, FILLED))
        out.append((cat.file, cat.line, f"the check question of red flag '{cat.id}'", cat.check, FILLED))
        out.append((cat.file, cat.line, f"the title of red flag '{cat.id}'", cat.title, SHOWN))
    return out


def localisation(k: Knowledge) -> list[Problem]:
    """Placeholders the bot cannot fill are errors; words that only fit one region (999, A&E, NHS, GP ...) written
    out instead of a placeholder are warnings (errors under --strict). Sources are exempt: they are not scanned."""
    out: list[Problem] = []
    known = ", ".join(f"{{{n}}}" for n in placeholders.NAMES)
    for file, line, what, text, use in _texts(k):
        if not text:
            continue
        for name in placeholders.unknown(text):
            out.append(Problem(file, line, f"unknown placeholder {{{name}}} in {what} (known: {known})"))
        if placeholders.stray_brace(text):
            out.append(Problem(file, line, f"a {{ or }} in {what} is not part of a placeholder"))
        if use != FILLED:
            for name in placeholders.used(text):
                out.append(Problem(file, line, f"placeholder {{{name}}} in {what} is never filled in; write it out"))
        if use == MATCHED:
            continue  # runners' own words, not the bot's
        words = placeholders.region_words(text)
        if words:
            swaps = placeholders.INSTEAD
            instead = "; ".join(f"{w!r} -> {swaps.get(w, swaps.get(w.lower(), 'a neutral word'))}" for w in words)
            out.append(_warn(file, line, f"{what} says {', '.join(repr(w) for w in words)}, which fits only one "
                             f"region; write instead: {instead}"))
    return out


def _collisions(k: Knowledge, settings: Settings) -> list[Problem]:
    """Phrasings that another entry scores confidently and about as high as (or higher than) their own entry."""
    confident = settings.matching.confident
    out: list[Problem] = []
    seen: set[tuple[frozenset[str], str]] = set()
    for entry in k.entries.values():
        for question in entry.questions:
            candidates = k.matcher.match(question, limit=4)
            own = next((c.confidence for c in candidates if c.id == entry.id), 0.0)
            for c in candidates:
                if c.id == entry.id or c.confidence < confident or c.confidence < own - TIE_POINTS:
                    continue
                key = (frozenset((entry.id, c.id)), " ".join(k.analyzer.terms(question)))
                if key in seen:
                    continue
                seen.add(key)
                if c.id == CHATTER_ID:
                    out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' looks like club "
                                     f"chatter ({CHATTER_FILE}) at {c.confidence:.0f} vs {own:.0f}: the bot may stay "
                                     "quiet on it"))
                    continue
                other = k.entries[c.id]
                how = "more strongly than" if c.confidence > own + TIE_POINTS else "about as strongly as"
                out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' matches "
                                 f"'{other.id}' ({other.file}:{other.line}) {how} its own entry "
                                 f"({c.confidence:.0f} vs {own:.0f}): the bot cannot tell these apart; give each "
                                 "entry its own words"))
    return out


def modes(k: Knowledge, m: MatchingSettings) -> Iterator[tuple[str, MatchingSettings]]:
    """The ways this bot can decide: as configured, and without the embeddings when they are loaded and on (the
    same knowledge must work on an install without the extra). The label names the second."""
    yield "", m
    if k.vectors is not None and m.embeddings:
        yield " without the embeddings", dataclasses.replace(m, embeddings=False)


def phrasings(k: Knowledge, settings: Settings) -> list[Problem]:
    """Every phrasing is a test: run through the real answer path (red flags, then ``decide``), it must reach its own
    entry confidently and raise no alarm or safety question, with and without the embeddings. Warnings (errors
    under ``--strict``)."""
    out: list[Problem] = []
    for entry in k.entries.values():
        for question, (mode, m) in ((q, mode) for q in entry.questions for mode in modes(k, settings.matching)):
            found = k.red_flags.assess(question)
            if found.alarms or found.checks:
                if mode:
                    continue  # said once
                hit = (found.alarms or found.checks)[0]
                what = "raises the alarm" if found.alarms else "gets the safety question"
                out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' {what} for "
                                 f"'{hit.category}' ({hit.file}:{hit.rule_line}): runners asking it get no answer; "
                                 "reword it or narrow the red-flag rule"))
                continue
            d = decide(k, question, m)
            if d.kind == "answer" and d.candidates[0].id == entry.id:
                continue
            if d.kind == "answer":
                how = f"lands on '{d.candidates[0].id}' ({d.candidates[0].confidence:.0f})"
            elif d.candidates:
                how = f"gets {d.kind} (best: '{d.candidates[0].id}' at {d.candidates[0].confidence:.0f})"
            else:
                how = f"gets {d.kind}" + (f" ({d.part})" if d.part else "")
            out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' does not reach its "
                             f"own entry confidently{mode}: it {how}; reword it or give the entry its own words"))
    return out


def near_copies(k: Knowledge) -> list[Problem]:
    """Identical or near-identical phrasings in two entries, whatever the matcher scores them."""
    rows = [(e, q, normalize(q)) for e in k.entries.values() for q in e.questions]
    texts = [norm for _, _, norm in rows]
    out: list[Problem] = []
    for i, (entry, question, norm) in enumerate(rows):
        if not norm:
            continue
        for _, score, j in process.extract(norm, texts, scorer=fuzz.token_sort_ratio, score_cutoff=NEAR_COPY,
                                           limit=None):
            other, other_q, _ = rows[j]
            if j <= i or other.id == entry.id:
                continue
            same = "the same as" if score >= 100 else f"nearly the same as ({score:.0f}/100)"
            out.append(_warn(entry.file, entry.line, f"phrasing {question!r} of '{entry.id}' is {same} "
                             f"{other_q!r} of '{other.id}' ({other.file}:{other.line}): one message cannot reach "
                             "both; keep it in one entry"))
    return out


def _examples(k: Knowledge, entry_id: str, settings: Settings) -> list[Problem]:
    """Run an entry's examples the way the engine would: red flags first, then a confident FAQ match."""
    entry = k.entries[entry_id]
    out: list[Problem] = []
    for example in entry.examples:
        flag = k.red_flags.detect(example)
        if flag is not None:
            # safety first: the bot escalates, which is right if the words describe a warning sign
            out.append(_warn(entry.file, entry.line, f"example {example!r} of '{entry.id}' triggers the "
                             f"'{flag.category}' red flag ({flag.level}), so the bot escalates instead of "
                             "answering; reword the example unless it really describes a warning sign"))
            continue
        if not normalize(example):
            out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' has no words"))
            continue
        for mode, m in modes(k, settings.matching):
            d = decide(k, example, m)
            if d.kind == "chatter":
                out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' looks like club "
                                   f"chatter ({CHATTER_FILE}){mode}, so the bot gives no answer"))
            elif d.kind != "answer":
                top = d.candidates
                best = f" (best: '{top[0].id}' at {top[0].confidence:.0f})" if top else ""
                out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' gets no confident "
                                   f"answer{mode}{best}"))
            elif d.candidates[0].id != entry.id:
                out.append(Problem(entry.file, entry.line, f"example {example!r} of '{entry.id}' lands on "
                                   f"'{d.candidates[0].id}' instead{mode}"))
    return out


def red_flag_examples(k: Knowledge) -> list[Problem]:
    """Every red-flag example must raise the alarm for its category, every check example must get that category's
    safety question, and every ``not`` line must stay quiet; any miss is an error."""
    out: list[Problem] = []
    for cat in k.red_flags.categories.values():
        def miss(text: str, what: str, cat: RedFlagCategory = cat) -> None:
            out.append(Problem(cat.file, cat.line, f"red-flag example {text!r} of '{cat.id}' {what}"))

        for text in cat.examples:
            found = k.red_flags.assess(text)
            if cat.id not in {h.category for h in found.alarms}:
                miss(text, f"does not raise the alarm (tier: {_tier(found)})")
        for text in cat.check_examples:
            found = k.red_flags.assess(text)
            if found.alarms or cat.id not in {h.category for h in found.checks}:
                miss(text, f"does not get the safety question (tier: {_tier(found)})")
        for text in cat.quiet:
            found = k.red_flags.assess(text)
            if found.alarms or found.checks:
                hit = (found.alarms or found.checks)[0]
                miss(text, f"is not quiet: {_tier(found)} for '{hit.category}' ({hit.file}:{hit.rule_line})")
    return out


def _tier(found: Assessment) -> str:
    return "alarm" if found.alarms else "check" if found.checks else "none"


def _synonyms(k: Knowledge) -> list[Problem]:
    used: set[str] = set()
    plain = Analyzer({})
    for entry in k.entries.values():
        for text in (*entry.questions, *entry.keywords, entry.title):
            used.update(k.analyzer.stems(text))
    out: list[Problem] = []
    for canonical in k.synonyms:
        target = plain.stems(canonical)
        if not target or all(t in STOP_STEMS for t in target):
            continue  # filler groups map to an ignored word on purpose
        if not set(target) <= used:
            out.append(_warn("synonyms.yaml", 1, f"synonym target '{canonical}' is not used by any FAQ phrasing or "
                             "keyword, so its variants lead nowhere"))
    return out


def _triage(k: Knowledge) -> list[Problem]:
    out: list[Problem] = []
    steps, outcomes = reachable(k.triage)
    for step in k.triage.steps.values():
        if step.id not in steps:
            out.append(_warn("triage.yaml", step.line, f"step '{step.id}' cannot be reached from the start "
                             f"('{k.triage.start}')"))
    for outcome in k.triage.outcomes.values():
        if outcome.id not in outcomes:
            out.append(_warn("triage.yaml", outcome.line, f"outcome '{outcome.id}' cannot be reached"))
        if not outcome.faq and outcome.disposition != "emergency":  # emergency plans show no reading
            out.append(_warn("triage.yaml", outcome.line, f"outcome '{outcome.id}' links no FAQ entry"))
    return out


def check_folder(folder: Path, settings: Settings) -> list[Problem]:
    """Every problem in a knowledge folder: load errors, or lint warnings and example failures."""
    try:
        k = load_knowledge(folder)
    except KnowledgeError as exc:
        return exc.problems
    return sorted(lint(k, settings))


def check_change(
    folder: Path, changes: dict[str, str | bytes], settings: Settings
) -> tuple[Knowledge | None, list[Problem]]:
    """The folder as it would be with ``changes`` (file name -> new text) written: the knowledge it would load
    (None when it would not load) and every check problem then. Checked on a scratch copy, so the running bot never
    sees a broken file (`runbot faq add` and the moderators' in-chat edits)."""
    with tempfile.TemporaryDirectory(prefix="runbot-check-") as scratch:
        copy = Path(scratch) / "knowledge"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".*"))
        for name, text in changes.items():
            data = text.encode("utf-8") if isinstance(text, str) else text
            (copy / name).write_bytes(data)
        try:
            k = load_knowledge(copy)
        except KnowledgeError as exc:
            return None, exc.problems
        return k, sorted(lint(k, settings))
