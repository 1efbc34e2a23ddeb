"""Loading the red-flag catalogue: YAML (one file, or a folder of one file per category) -> RedFlagDetector.

Every problem names its file and line. A folder holds ``context.yaml`` (the NegEx/ConText vocabulary and the
word-sense guards), ``shared.yaml`` (concepts used by several categories) and one ``<category>.yaml`` each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.core.payloads import MAX_CATEGORY_ID
from bot.core.placeholders import NAMES as PLACEHOLDERS
from bot.core.red_flags.builder import CONCEPT_RE, Builder, item_line, key_line, type_name
from bot.core.red_flags.context_loader import read_lexicon, read_real_words, read_settings, read_specials
from bot.core.red_flags.detector import LEVELS, RedFlagCategory, RedFlagDetector
from bot.core.red_flags.patterns import Compiled, Settings
from bot.core.red_flags.rules import parse_rules
from bot.core.red_flags.vocabulary import NEG, POLARITY_FIRST, POST, SPECIAL_KEYS, ConceptInfo, Rule, Window
from bot.core.yamlio import Problem, line_of

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
#: the reply parts a category may switch off (both default to true)
_SWITCH_KEYS = ("header", "footer")
_CONTEXT_KEYS = frozenset({"version", "settings", "real_words", "variants", "ages", *SPECIAL_KEYS})
_TOP_KEYS = frozenset({*_CONTEXT_KEYS, "concepts", "categories"})
_EXAMPLE_KEYS = ("examples", "check_examples", "not")
_CATEGORY_KEYS = frozenset(
    {
        "id",
        "level",
        "title",
        "message",
        "source",
        "rules",
        "check",
        "check_rules",
        "then_ask",
        *_EXAMPLE_KEYS,
        *_SWITCH_KEYS,
    }
)
_CONCEPT_KEYS = frozenset({"terms", "past_ok", "note"})


def parse_red_flags(data: Any, file: str) -> tuple[RedFlagDetector | None, list[Problem]]:
    """Validate one parsed catalogue file (context, concepts and a ``categories`` list) and build the detector."""
    return parse_red_flag_docs([(file, data)])


def parse_red_flag_docs(docs: Sequence[tuple[str, Any]]) -> tuple[RedFlagDetector | None, list[Problem]]:
    """Validate the parsed files of a catalogue and build the detector; ``(None, problems)`` when anything is wrong.

    A file is either a category (it has an ``id``: level, title, message, check, rules, check_rules, examples,
    check_examples, not and its own ``concepts``) or part of the catalogue (context keys, ``concepts``,
    ``categories``).
    """
    b = Builder(docs[0][0] if docs else "red_flags")
    mappings: list[tuple[str, Any]] = []
    for file, data in docs:
        b.file = file
        if not isinstance(data, dict):
            b.problem(line_of(data), f"the red-flag file must be a mapping with 'categories', not {type_name(data)}")
            continue
        allowed = _CATEGORY_KEYS | {"concepts"} if "id" in data else _TOP_KEYS
        for key in data:
            if key not in allowed:
                b.problem(
                    key_line(data, key, 1), f"unknown key '{key}' (expected one of: {', '.join(sorted(allowed))})"
                )
        mappings.append((file, data))

    settings, window, real_words = Settings(), Window(), []
    for file, data in mappings:
        b.file = file
        if "settings" in data:
            settings, window = read_settings(b, data)
        if "real_words" in data:
            real_words.extend(read_real_words(b, data))
    if not mappings:
        return None, sorted(b.problems)
    read_specials(b, mappings)

    raw_concepts: list[tuple[str, Any, int]] = []  # (file, mapping, line) of each concepts block
    for file, data in mappings:
        b.file = file
        if "concepts" in data:
            block = data["concepts"]
            cline = key_line(data, "concepts", 1)
            if not isinstance(block, dict):
                b.problem(cline, f"'concepts' must be a mapping of name -> terms, not {type_name(block)}")
                continue
            _parse_concepts(b, block, cline)
            raw_concepts.append((file, block, cline))

    lexicon = read_lexicon(b, mappings)  # after the concepts: an age concept may also have terms ("elderly")
    categories: list[RedFlagCategory] = []
    rules: dict[str, list[Rule]] = {}
    check_rules: dict[str, list[Rule]] = {}
    seen_ids: dict[str, str] = {}
    used: set[str] = set()
    for file, data in mappings:
        b.file = file
        items: list[tuple[Any, int]] = []
        if "id" in data:
            items.append((data, 1))
        elif "categories" in data:
            raw_cats = data["categories"]
            catline = key_line(data, "categories", 1)
            if not isinstance(raw_cats, list) or not raw_cats:
                b.problem(catline, "'categories' must be a non-empty list")
                continue
            items.extend((cat, item_line(raw_cats, i, catline)) for i, cat in enumerate(raw_cats))
        for cat, line in items:
            parsed = _parse_category(b, cat, line, seen_ids, used)
            if parsed is not None:
                categories.append(parsed[0])
                rules[parsed[0].id] = parsed[1]
                check_rules[parsed[0].id] = parsed[2]
    if not categories and not b.problems:
        b.problem(1, "no red-flag categories")
    _check_then_ask(b, categories)

    for file, block, cline in raw_concepts:
        b.file = file
        for name in block:
            if name in b.concepts and name not in used:
                b.problem(key_line(block, name, cline), f"concept '{name}' is not used by any rule")

    if b.problems:
        return None, sorted(b.problems)
    compiled = Compiled(settings)
    for term in b.terms:
        compiled.add_term(term)
    compiled.finish(real_words)
    compiled.gap_stops = frozenset(  # plain negation words and "fine"/"normal" (not "nearly", "avoid" ...)
        t.words[0].text
        for t in b.terms
        if len(t.words) == 1
        and t.words[0].kind == "exact"
        and ((t.concept == NEG and t.words[0].text in POLARITY_FIRST) or t.concept == POST)
    )
    return RedFlagDetector(categories, rules, check_rules, b.concepts, compiled, window, lexicon), []


def _parse_concepts(b: Builder, block: Any, cline: int) -> None:
    for name, spec in block.items():
        nline = key_line(block, name, cline)
        if not isinstance(name, str) or not CONCEPT_RE.match(name):
            b.problem(nline, f"concept name '{name}' must be lowercase letters, digits and _ (like saddle_area)")
            continue
        if name in b.concepts:
            b.problem(nline, f"concept '{name}' is defined twice")
            continue
        past_ok = False
        terms = spec
        if isinstance(spec, dict):
            for key in spec:
                if key not in _CONCEPT_KEYS:
                    b.problem(key_line(spec, key, nline), f"unknown key '{key}' in concept '{name}'")
            if "terms" not in spec:
                b.problem(nline, f"concept '{name}' has no 'terms'")
                continue
            terms = spec["terms"]
            flag = spec.get("past_ok", False)
            if not isinstance(flag, bool):
                b.problem(key_line(spec, "past_ok", nline), f"'past_ok' in concept '{name}' must be true or false")
            else:
                past_ok = flag
        tline = nline if not isinstance(spec, dict) else key_line(spec, "terms", nline)
        b.add_terms(terms, tline, name, f"concept '{name}'")
        b.concepts[name] = ConceptInfo(name, past_ok)


def _parse_category(
    b: Builder, cat: Any, line: int, seen_ids: dict[str, str], used: set[str]
) -> tuple[RedFlagCategory, list[Rule], list[Rule]] | None:
    if not isinstance(cat, dict):
        b.problem(line, f"a category must be a mapping with id, level, title, message, rules; not {type_name(cat)}")
        return None
    line = line_of(cat, line)
    if "categories" not in cat:  # inside a categories list the unknown keys are not checked yet
        for key in cat:
            if key not in _CATEGORY_KEYS and key != "concepts":
                allowed = ", ".join(sorted(_CATEGORY_KEYS))
                b.problem(key_line(cat, key, line), f"unknown key '{key}' (expected one of: {allowed})")
    ok = True
    cid = cat.get("id")
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        b.problem(key_line(cat, "id", line), "category 'id' must be kebab-case text, like cauda-equina")
        ok = False
    elif len(cid) > MAX_CATEGORY_ID:  # the safety question's "Yes" button carries it
        b.problem(key_line(cat, "id", line), f"category id '{cid}' is too long (at most {MAX_CATEGORY_ID} characters)")
        ok = False
    elif cid in seen_ids:
        first_file, _, first_line = seen_ids[cid].rpartition(":")
        where = f"on line {first_line}" if first_file == b.file else f"in {seen_ids[cid]}"
        b.problem(key_line(cat, "id", line), f"duplicate category id '{cid}' (first {where})")
        ok = False
    else:
        seen_ids[cid] = f"{b.file}:{key_line(cat, 'id', line)}"
    level = cat.get("level")
    if level not in LEVELS:
        b.problem(key_line(cat, "level", line), f"bad level {level!r}: must be 'emergency' or 'urgent'")
        ok = False
    texts: dict[str, str] = {}
    for key in ("title", "message", "check"):
        value = cat.get(key)
        if value is None:
            if key != "check":
                b.problem(line, f"category '{cid}' is missing '{key}'")
                ok = False
        elif not isinstance(value, str) or not value.strip():
            b.problem(key_line(cat, key, line), f"'{key}' must be non-empty text")
            ok = False
        else:
            texts[key] = value.strip()
            ok = _placeholders_ok(b, texts[key], key, key_line(cat, key, line)) and ok
    switches = {key: cat.get(key, True) for key in _SWITCH_KEYS}
    for key, value in switches.items():
        if not isinstance(value, bool):
            b.problem(key_line(cat, key, line), f"'{key}' must be true or false")
            ok = False
    then_ask = cat.get("then_ask", "")
    if not isinstance(then_ask, str) or (then_ask and not _ID_RE.match(then_ask)):
        b.problem(key_line(cat, "then_ask", line), "'then_ask' must be the id of another category, like cauda-equina")
        ok = False
    if "source" in cat and not (isinstance(cat["source"], str) and cat["source"].strip()):
        b.problem(key_line(cat, "source", line), "'source' must be non-empty text")
    parsed_rules = parse_rules(b, cat, "rules", line, used, required=True)
    parsed_checks = parse_rules(b, cat, "check_rules", line, used, required=False)
    if parsed_rules is None or parsed_checks is None:
        ok = False
    elif parsed_checks and "check" not in texts:
        b.problem(key_line(cat, "check_rules", line), f"category '{cid}' has check_rules but no 'check' question")
        ok = False
    examples: dict[str, tuple[str, ...]] = {}
    for key in _EXAMPLE_KEYS:
        raw = cat.get(key, [])
        if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
            b.problem(key_line(cat, key, line), f"'{key}' must be a list of example messages")
            ok = False
        else:
            examples[key] = tuple(raw)
    if not ok or parsed_rules is None or parsed_checks is None:
        return None
    assert isinstance(cid, str) and level in LEVELS
    category = RedFlagCategory(
        cid,
        level,
        texts["title"],
        texts["message"],
        texts.get("check", ""),
        b.file,
        key_line(cat, "id", line),
        examples["examples"],
        examples["check_examples"],
        examples["not"],
        header=switches["header"],
        footer=switches["footer"],
        then_ask=then_ask,
    )
    return category, parsed_rules, parsed_checks


def _check_then_ask(b: Builder, categories: Sequence[RedFlagCategory]) -> None:
    """A ``then_ask`` names a category that exists, has a question, and is more severe than the one asking."""
    by_id = {c.id: c for c in categories}
    for cat in categories:
        if not cat.then_ask:
            continue
        b.file = cat.file
        follow = by_id.get(cat.then_ask)
        if follow is None:
            b.problem(cat.line, f"'{cat.id}' has then_ask '{cat.then_ask}', which is not a red-flag category")
        elif LEVELS.index(follow.level) >= LEVELS.index(cat.level):
            b.problem(cat.line, f"'{cat.id}' has then_ask '{follow.id}', which is not more severe ({follow.level})")
        elif not follow.check:
            b.problem(cat.line, f"'{cat.id}' has then_ask '{follow.id}', which has no 'check' question to ask")


def _placeholders_ok(b: Builder, text: str, key: str, line: int) -> bool:
    bare = _PLACEHOLDER_RE.sub("", text)
    if "{" in bare or "}" in bare:
        b.problem(line, f"unmatched {{ or }} in {key}")
        return False
    for ph in _PLACEHOLDER_RE.findall(text):
        if ph not in PLACEHOLDERS:
            known = ", ".join(f"{{{n}}}" for n in PLACEHOLDERS)
            b.problem(line, f"unknown placeholder {{{ph}}} in {key} (known: {known})")
            return False
        if key == "title":
            b.problem(line, f"placeholder {{{ph}}} in title: titles are not filled in, write the words out")
            return False
    return True
