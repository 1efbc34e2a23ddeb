"""Moderator reports: unanswered questions grouped by similarity, and counts of what the bot did."""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz

GROUP_SIMILARITY = 80.0


def group_unanswered(rows: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Merge similar questions (token_set_ratio >= 80) into groups; most asked first."""
    groups: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (-r["count"], r["text"])):
        for g in groups:
            if fuzz.token_set_ratio(row["text"], g["text"]) >= GROUP_SIMILARITY:
                g["count"] += row["count"]
                g["variants"] += 1
                g["last_seen"] = max(g["last_seen"], row["last_seen"])
                break
        else:
            groups.append({**row, "variants": 1})
    groups.sort(key=lambda g: (-g["count"], g["text"]))
    return groups[:limit]


def unanswered_report(rows: list[dict[str, Any]], limit: int = 20) -> str:
    groups = group_unanswered(rows, limit)
    if not groups:
        return "No unanswered questions in this period. 🎉"
    lines = ["Most asked questions I couldn't answer (count, last seen):"]
    for g in groups:
        similar = f" (+{g['variants'] - 1} similar)" if g["variants"] > 1 else ""
        lines.append(f"{g['count']:>4}  {g['last_seen']:%Y-%m-%d}  {g['text'][:120]}{similar}")
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
    lines = [f"What I did in {period} (counts only):"]
    for kind, label in STAT_KINDS:
        lines.append(f"{counts.get(kind, 0):>6}  {label}")
    return "\n".join(lines)
