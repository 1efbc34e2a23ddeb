"""Moderator reports: unanswered questions grouped by similarity, and counts of what the bot did."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from rapidfuzz import fuzz

from bot.core import masking
from bot.core.analysis import Analyzer

#: two questions whose content words are this similar (0-100) are one group
GROUP_SIMILARITY = 75.0
DEFAULT_PERIOD = "30d"
_PERIOD = re.compile(r"^\s*(\d{1,4})\s*([dhw])\s*$")
#: runs of digits this long are ids, phone or account numbers: never shown to moderators
_LONG_NUMBER = re.compile(r"\d{5,}")
_ANALYZER = Analyzer({})


def parse_period(text: str) -> timedelta:
    """'7d' -> 7 days; 'h' hours, 'w' weeks. Raises ValueError with a readable message."""
    m = _PERIOD.match(text)
    if not m:
        raise ValueError(f"period {text!r}: use a number and d, h or w, e.g. 7d")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]


def describe_period(text: str) -> str:
    n, unit = int(text.strip()[:-1]), text.strip()[-1]
    word = {"d": "day", "h": "hour", "w": "week"}[unit]
    return f"the last {n} {word}{'s' if n != 1 else ''}"


def _key(text: str) -> str:
    """The content words of a question, stemmed: 'best gels for long runs' ~ 'good gel on a long run'."""
    return " ".join(_ANALYZER.terms(text)) or text


def _similar(a: str, b: str) -> bool:
    if not a or not b:
        return False
    if fuzz.token_sort_ratio(a, b) >= GROUP_SIMILARITY:
        return True
    # mostly the same content words ("best gel long run" ~ "good gel long run"), at least two of them
    wa, wb = set(a.split()), set(b.split())
    shared = len(wa & wb)
    return shared >= 2 and shared >= 0.75 * max(len(wa), len(wb))


def group_unanswered(rows: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Merge similar questions into groups (the most asked wording names the group); most asked first."""
    groups: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (-r["count"], r["text"])):
        key = _key(row["text"])
        for g in groups:
            if _similar(key, g["key"]):
                g["count"] += row["count"]
                g["variants"] += 1
                g["last_seen"] = max(g["last_seen"], row["last_seen"])
                break
        else:
            groups.append({**row, "key": key, "variants": 1})
    groups.sort(key=lambda g: (-g["count"], -g["last_seen"].timestamp(), g["text"]))
    return groups[:limit]


def redact(text: str) -> str:
    """Hide what still looks personal in what moderators see (rows stored before masking): handles, emails, links,
    phone numbers and other long numbers (user ids pasted as mentions)."""
    return _LONG_NUMBER.sub("#", masking.redact(text))


def unanswered_report(rows: list[dict[str, Any]], limit: int = 20, period: str = "this period") -> str:
    groups = group_unanswered(rows, limit)
    if not groups:
        return f"No unanswered questions in {period}. 🎉"
    lines = [f"Most asked questions I couldn't answer in {period} (times asked, last seen, question):"]
    for g in groups:
        similar = f" (+{g['variants'] - 1} similar)" if g["variants"] > 1 else ""
        lines.append(f"{g['count']:>4}  {g['last_seen']:%Y-%m-%d}  {redact(g['text'])[:120]}{similar}")
    lines.append("Add a phrasing to an entry (or a new entry) for the ones that should have an answer.")
    return "\n".join(lines)


STAT_KINDS = (
    ("messages", "messages handled"),
    ("answer", "answered from the FAQ"),
    ("did-you-mean", "did-you-mean offered"),
    ("fallback", "no answer (fallback)"),
    ("triage", "triage steps"),
    ("escalation-emergency", "emergency escalations"),
    ("escalation-urgent", "urgent escalations"),
)


def stats_report(counts: dict[str, int], period: str) -> str:
    """Counts only: nothing here can point at a person."""
    lines = [f"What I did in {period} (counts only):"]
    for kind, label in STAT_KINDS:
        lines.append(f"{counts.get(kind, 0):>6}  {label}")
    questions = sum(counts.get(k, 0) for k in ("answer", "did-you-mean", "fallback"))
    if questions:
        lines.append(f"{100 * counts.get('answer', 0) / questions:>5.0f}%  of questions answered directly")
    return "\n".join(lines)
