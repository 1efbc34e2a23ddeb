"""The catalogue's rules: ``all`` (concepts or inline term lists that must all be found), ``unless`` (concepts that
cancel the rule) and ``within`` (a sentence, the message, or a number of words), each problem with its line."""

from __future__ import annotations

from typing import Any

from bot.core.red_flags.builder import Builder, item_line, key_line, type_name
from bot.core.red_flags.vocabulary import ConceptInfo, Rule
from bot.core.yamlio import line_of

_RULE_KEYS = frozenset({"all", "unless", "within"})


def parse_rules(b: Builder, cat: Any, key: str, line: int, used: set[str], *, required: bool) -> list[Rule] | None:
    raw_rules = cat.get(key)
    rline = key_line(cat, key, line)
    if raw_rules is None:
        if required:
            b.problem(line, f"category '{cat.get('id')}' has no '{key}'")
            return None
        return []
    if not isinstance(raw_rules, list) or not raw_rules:
        b.problem(rline, f"'{key}' must be a non-empty list")
        return None
    out: list[Rule] = []
    ok = True
    for ri, rule in enumerate(raw_rules):
        parsed = parse_rule(b, rule, item_line(raw_rules, ri, rline), used)
        if parsed is None:
            ok = False
        else:
            out.append(parsed)
    return out if ok else None


def parse_rule(b: Builder, rule: Any, line: int, used: set[str]) -> Rule | None:
    spec: Any = rule
    if isinstance(rule, list):
        spec = {"all": rule}
    elif isinstance(rule, dict):
        line = line_of(rule, line)
        for key in rule:
            if key not in _RULE_KEYS:
                b.problem(key_line(rule, key, line), f"unknown key '{key}' in rule (expected all, unless, within)")
                return None
    else:
        b.problem(line, f"a rule must be a list of concepts or a mapping with 'all'; not {type_name(rule)}")
        return None
    if "all" not in spec:
        b.problem(line, "rule has no 'all'")
        return None
    concepts = concept_refs(b, spec["all"], key_line(spec, "all", line), used, "all")
    unless: tuple[str, ...] | None = ()
    if "unless" in spec:
        unless = concept_refs(b, spec["unless"], key_line(spec, "unless", line), used, "unless")
    scope: str | int = "sentence"
    if "within" in spec:
        w = spec["within"]
        if w in ("sentence", "message"):
            scope = w
        elif isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 50:
            scope = w
        else:
            b.problem(
                key_line(spec, "within", line), "'within' must be 'sentence', 'message' or a number of words (1-50)"
            )
            return None
    if concepts is None or unless is None:
        return None
    return Rule(concepts, unless, scope, line, b.file)


def concept_refs(b: Builder, raw: Any, line: int, used: set[str], where: str) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or not raw:
        b.problem(line, f"'{where}' must be a non-empty list of concept names or term lists")
        return None
    out: list[str] = []
    ok = True
    for i, item in enumerate(raw):
        iline = item_line(raw, i, line)
        if isinstance(item, str):
            if item not in b.concepts or item.startswith("@"):
                b.problem(iline, f"unknown concept '{item}' (define it under 'concepts', or write a list of terms)")
                ok = False
            else:
                used.add(item)
                out.append(item)
        elif isinstance(item, list):
            b.anon += 1
            name = f"~inline{b.anon}@{iline}"
            if b.add_terms(item, iline, name, "an inline term list") == 0:
                ok = False
            b.concepts[name] = ConceptInfo(name)
            out.append(name)
        else:
            b.problem(iline, f"rule entries must be concept names or lists of terms, not {type_name(item)}")
            ok = False
    return tuple(out) if ok else None
