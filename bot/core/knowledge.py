"""Loading the knowledge folder: FAQ files, synonyms, triage flow and red flags -> one immutable Knowledge."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from bot.core import payloads
from bot.core.analysis import Analyzer
from bot.core.consent_text import CONSENT_FILE, DEFAULT_CONSENT, ConsentText, parse_consent
from bot.core.embedding import EntryVectors, installed, shipped_embedder
from bot.core.faq import FaqMatcher, IndexedEntry, MatchParams
from bot.core.faq_model import MODEL_FILE as FAQ_MODEL_FILE
from bot.core.faq_model import FaqModel, read_faq_model, stale_warning
from bot.core.red_flags import RedFlagDetector
from bot.core.red_flags.folder import read_catalogue
from bot.core.schema import KEBAB, Checker
from bot.core.triage import TriageFlow
from bot.core.triage_load import parse as parse_triage
from bot.core.yamlio import LDict, LList, Problem, YamlError, load_bytes, read_bytes

T = TypeVar("T")

FAQ_GLOB = "faq*.yaml"
SYNONYMS_FILE = "synonyms.yaml"
TRIAGE_FILE = "triage.yaml"
CHATTER_FILE = "chatter.yaml"
#: the matcher's id for club chatter: when it wins, no FAQ answer is given
CHATTER_ID = "_chatter"
MAX_TITLE = 40


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One FAQ entry as moderators wrote it."""

    id: str
    title: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    related: tuple[str, ...]
    source: str | None
    examples: tuple[str, ...]
    file: str
    line: int
    related_line: int = 0


@dataclass(frozen=True)
class Knowledge:
    """Everything the engine knows, validated and indexed once; replaced whole on reload, never mutated."""

    entries: MappingProxyType[str, FaqEntry]
    synonyms: MappingProxyType[str, tuple[str, ...]]
    chatter: tuple[str, ...]
    triage: TriageFlow
    red_flags: RedFlagDetector
    matcher: FaqMatcher
    analyzer: Analyzer
    version: str
    warnings: tuple[Problem, ...] = field(default=())
    #: the consent question asked before health data is stored (knowledge/consent.yaml; built-in when absent)
    consent: ConsentText = DEFAULT_CONSENT
    #: every phrasing and keyword embedded (the embeddings extra), or None when it is not installed or not wanted
    vectors: EntryVectors | None = None
    #: the FAQ model (faq-model.json), or None: the lexical matcher decides alone
    faq_model: FaqModel | None = None

    def still_has(self, payload: payloads.Payload) -> bool:
        """Whether this knowledge still has what a button points at (an FAQ entry, a red-flag category, a triage
        outcome offered a check-in); a button from an older knowledge version may not."""
        match payload.kind, payload.args:
            case payloads.Kind.FAQ, (entry,):  # the chatter pseudo-entry ("_chatter") never decodes: not kebab-case
                return entry in self.entries
            case payloads.Kind.CHECK, ("yes", category):
                return category in self.red_flags.categories
            case payloads.Kind.FOLLOWUP, ("yes", topic):
                return any(payloads.followup_topic(o, payload.version) == topic for o in self.triage.outcomes)
        return True


class KnowledgeError(Exception):
    """The knowledge folder has errors; ``problems`` lists every one with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s) in the knowledge files:\n" + "\n".join(map(str, errors)))


class _Folder:
    """Reads each file of a knowledge folder once: its bytes feed both the version digest and the parser."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.digest = hashlib.sha256()

    def read(self, name: str, *, missing: str | None = None) -> Any:
        """The parsed file, or None when it is absent (a problem if ``missing`` says why it is needed) or broken."""
        path = self.root / name
        if not path.exists():
            if missing is not None:
                self.problems.append(Problem(name, 1, missing))
            return None
        try:
            raw = read_bytes(path, name)
            self.digest.update(name.encode() + b"\0" + raw)
            return load_bytes(raw, name)
        except YamlError as exc:
            self.problems.append(exc.problem)
            return None

    def check(self, name: str, build: Callable[[Any, Checker], T], default: T, *, missing: str | None = None) -> T:
        """Read a file and validate it with ``build``; its problems are collected, ``default`` on failure."""
        data = self.read(name, missing=missing)
        if data is None:
            return default
        ck = Checker(name)
        result = build(data, ck)
        self.problems.extend(ck.problems)
        return result


def _parse_entries(data: Any, file: str, ck: Checker) -> list[FaqEntry]:
    root = ck.mapping(data, "an FAQ file", 1)
    if root is None:
        return []
    ck.keys(root, "an FAQ file", {"entries"}, set())
    raw = root.get("entries")
    if raw is None:
        return []
    if not isinstance(raw, LList):
        ck.error(root.line_of("entries"), "'entries' must be a list of entries (each starting with '- id:')")
        return []
    out: list[FaqEntry] = []
    for i, item in enumerate(raw):
        where = f"entry #{i + 1}"
        e = ck.mapping(item, where, raw.line_of(i))
        if e is None:
            continue
        if isinstance(e.get("id"), str):
            where = f"entry '{e['id']}'"
        ck.keys(e, where, {"id", "questions", "answer"}, {"title", "keywords", "related", "source", "examples"})
        eid = ck.text(e, "id", where)
        if eid is not None and not KEBAB.match(eid):
            ck.error(e.line_of("id"), f"id '{eid}' must be kebab-case (lowercase words joined by '-')")
            eid = None
        if eid is not None and not payloads.faq_id_fits(eid):
            ck.error(e.line_of("id"), f"id '{eid}' is too long (at most {payloads.MAX_FAQ_ID} characters)")
            eid = None
        questions = ck.text_list(e, "questions", where)
        if "questions" in e and not questions:
            ck.error(e.line_of("questions"), f"{where} needs at least one question")
        answer = ck.text(e, "answer", where)
        title = ck.text(e, "title", where)
        if title is not None and len(title) > MAX_TITLE:
            ck.error(e.line_of("title"), f"title of {where} is over {MAX_TITLE} characters (it is a button label)")
        source = ck.text(e, "source", where)
        keywords = ck.text_list(e, "keywords", where)
        related = ck.text_list(e, "related", where)
        examples = ck.text_list(e, "examples", where)
        if eid is None or answer is None or not questions:
            continue
        label = title or _default_title(questions)
        out.append(
            FaqEntry(
                eid, label, questions, keywords, answer, related, source, examples, file, e.line, e.line_of("related")
            )
        )
    return out


def _parse_chatter(data: Any, ck: Checker) -> tuple[str, ...]:
    root = ck.mapping(data, "the chatter file", 1)
    if root is None:
        return ()
    ck.keys(root, "the chatter file", {"chatter"}, set())
    return ck.text_list(root, "chatter", "the chatter file")


def _triage_checked(data: Any, ck: Checker) -> TriageFlow | None:
    flow, found = parse_triage(data, ck.file)
    ck.problems.extend(found)
    return flow


def _default_title(questions: tuple[str, ...]) -> str:
    first = questions[0]
    return first[: MAX_TITLE - 1] + "…" if len(first) > MAX_TITLE else first


def _parse_synonyms(data: Any, ck: Checker) -> dict[str, tuple[str, ...]]:
    root = ck.mapping(data, "the synonyms file", 1)
    if root is None:
        return {}
    ck.keys(root, "the synonyms file", {"synonyms"}, set())
    table = root.get("synonyms")
    if table is None:
        return {}
    if not isinstance(table, LDict):
        ck.error(root.line_of("synonyms"), "'synonyms' must be a mapping: canonical word: [variants]")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for canonical in table:
        variants = ck.text_list(table, canonical, f"synonyms of '{canonical}'")
        out[canonical] = variants
    return out


def load_knowledge(
    path: str | Path, params: MatchParams | None = None, *, embeddings: bool = True, lazy: bool = False
) -> Knowledge:
    """Load and validate a knowledge folder; raise KnowledgeError listing every problem. ``embeddings``: embed the
    phrasings when the embeddings extra is installed (False: the lexical matcher alone, as without the extra);
    ``lazy``: not now but at the first message that needs them (one-shot ``runbot ask``)."""
    root = Path(path)
    if not root.is_dir():
        raise KnowledgeError([Problem(str(root), 1, "knowledge folder not found")])
    folder = _Folder(root)
    problems = folder.problems
    faq_files = sorted(root.glob(FAQ_GLOB))
    if not faq_files:
        problems.append(Problem(str(root), 1, f"no FAQ files ({FAQ_GLOB}) in the knowledge folder"))
    all_entries: list[FaqEntry] = []
    for file in faq_files:
        all_entries += folder.check(file.name, lambda data, ck, name=file.name: _parse_entries(data, name, ck), [])
    entries: dict[str, FaqEntry] = {}
    for entry in all_entries:
        if entry.id in entries:
            first = entries[entry.id]
            problems.append(
                Problem(entry.file, entry.line, f"duplicate id '{entry.id}' (first at {first.file}:{first.line})")
            )
            continue
        entries[entry.id] = entry
    for entry in all_entries:
        for rel in entry.related:
            if rel not in entries:
                problems.append(
                    Problem(entry.file, entry.related_line, f"entry '{entry.id}' is related to unknown id '{rel}'")
                )

    synonyms = folder.check(SYNONYMS_FILE, _parse_synonyms, {})
    chatter = folder.check(CHATTER_FILE, _parse_chatter, ())
    triage = folder.check(TRIAGE_FILE, _triage_checked, None, missing="the triage flow file is missing")
    if triage is not None:
        for outcome in triage.outcomes.values():
            for fid in outcome.faq:
                if fid not in entries:
                    problems.append(
                        Problem(TRIAGE_FILE, outcome.line, f"outcome '{outcome.id}' links unknown id '{fid}'")
                    )
    red_flags = read_catalogue(folder)
    consent = folder.check(CONSENT_FILE, parse_consent, None)

    known = {f.name for f in faq_files} | {SYNONYMS_FILE, TRIAGE_FILE, CHATTER_FILE, CONSENT_FILE}
    for other in sorted(root.glob("*.y*ml")):
        if other.name not in known:
            problems.append(
                Problem(other.name, 1, f"file not used: FAQ files must be named {FAQ_GLOB}", severity="warning")
            )

    faq_model, raw_model, model_problem = read_faq_model(root / FAQ_MODEL_FILE)
    folder.digest.update(FAQ_MODEL_FILE.encode() + b"\0" + raw_model)
    stale = faq_model and stale_warning(faq_model, {e.id: e.questions for e in entries.values()})
    if model_problem or stale:
        problems.append(Problem(FAQ_MODEL_FILE, 1, model_problem or stale or "", severity="warning"))
    if any(p.severity == "error" for p in problems) or triage is None or red_flags is None:
        raise KnowledgeError(problems or [Problem(str(root), 1, "knowledge could not be loaded")])
    analyzer = Analyzer(synonyms)
    matcher, vectors = build_index(entries.values(), chatter, analyzer, params, embeddings=embeddings)
    # with a FAQ model that knows every entry the words-only path runs without them (``decision``): embed on first use
    lazy = lazy or (faq_model is not None and not stale)
    if vectors is not None and not lazy and not vectors.prepare():  # installed but unreadable: logged once
        vectors = None
    return Knowledge(
        entries=MappingProxyType(entries),
        synonyms=MappingProxyType(synonyms),
        chatter=chatter,
        triage=triage,
        red_flags=red_flags,
        matcher=matcher,
        analyzer=analyzer,
        version=folder.digest.hexdigest()[:12],
        warnings=tuple(sorted(p for p in problems if p.severity != "error")),
        consent=consent or DEFAULT_CONSENT,
        vectors=vectors,
        faq_model=faq_model,
    )


def build_index(
    entries: Iterable[FaqEntry],
    chatter: Sequence[str],
    analyzer: Analyzer,
    params: MatchParams | None = None,
    *,
    embeddings: bool = True,
) -> tuple[FaqMatcher, EntryVectors | None]:
    """The matcher over phrasings, keywords, titles and chatter; their vectors (embedded on first use) if wanted."""
    # a title the moderators wrote points at its entry like a keyword; a title taken from the first question doesn't
    indexed = [
        IndexedEntry(
            e.id, e.questions, e.keywords if e.title == _default_title(e.questions) else (*e.keywords, e.title)
        )
        for e in entries
    ]
    if chatter:
        indexed.append(IndexedEntry(CHATTER_ID, tuple(chatter)))
    matcher = FaqMatcher(indexed, analyzer, params)
    return matcher, EntryVectors.of(indexed, shipped_embedder) if embeddings and installed() else None


class KnowledgeRef:
    """The engine's handle on the current Knowledge: a reload swaps the whole object in one assignment."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.current = knowledge

    def swap(self, knowledge: Knowledge) -> None:
        self.current = knowledge
