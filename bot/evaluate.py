"""`runbot eval`: accuracy of FAQ matching and red-flag detection on a JSONL file of labelled messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.engine import Engine
from bot.core.messages import IncomingMessage

LEVELS = ("emergency", "urgent")


@dataclass
class EvalReport:
    """Counts and misses of one evaluation run."""

    faq_total: int = 0
    faq_correct: int = 0
    oos_total: int = 0
    oos_rejected: int = 0
    level_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    level_hit: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    level_alarm: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    none_total: int = 0
    none_escalated: int = 0
    none_checked: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def faq_accuracy(self) -> float | None:
        return self.faq_correct / self.faq_total if self.faq_total else None

    @property
    def oos_rejection(self) -> float | None:
        return self.oos_rejected / self.oos_total if self.oos_total else None

    def recall(self, level: str) -> float | None:
        total = self.level_total[level]
        return self.level_hit[level] / total if total else None

    @property
    def false_escalation(self) -> float | None:
        """Alarm-tier escalations on lines that should stay quiet."""
        return self.none_escalated / self.none_total if self.none_total else None

    @property
    def check_rate(self) -> float | None:
        """Safety questions asked on lines that should stay quiet."""
        return self.none_checked / self.none_total if self.none_total else None

    def lines(self) -> list[str]:
        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{100 * v:.1f}%"

        out = [
            f"FAQ top-1 accuracy:        {pct(self.faq_accuracy)} ({self.faq_correct}/{self.faq_total})",
            f"out-of-scope rejection:    {pct(self.oos_rejection)} ({self.oos_rejected}/{self.oos_total})",
        ]
        for level in LEVELS:
            total = self.level_total[level]
            alarm = f"{self.level_alarm[level]}/{total}"
            out.append(
                f"red-flag recall {level + ':':<10} {pct(self.recall(level))} "
                f"({self.level_hit[level]}/{total}; alarm tier alone {alarm})"
            )
        out.append(f"false escalations (none): {pct(self.false_escalation)} ({self.none_escalated}/{self.none_total})")
        out.append(f"safety questions (none):  {pct(self.check_rate)} ({self.none_checked}/{self.none_total})")
        if self.misses:
            out.append(f"\n{len(self.misses)} miss(es):")
            out.extend(self.misses)
        return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f'{path}:{n}: each line needs a JSON object with a "text" string')
        rows.append(row)
    return rows


async def evaluate(engine: Engine, rows: list[dict[str, Any]], *, listen: bool = False) -> EvalReport:
    """Run every line as a new user (in private, or overheard in a listen channel with ``listen``).

    Recall counts the alarm tier or a safety question at the expected level; on lines that should stay quiet,
    alarms and safety questions are counted apart.
    """
    report = EvalReport()
    for n, row in enumerate(rows):
        msg = IncomingMessage(
            "eval",
            f"eval-{n}",
            "eval-group" if listen else f"eval-{n}",
            text=row["text"],
            is_private=not listen,
            listen_only=listen,
        )
        outcome = await engine.handle(msg)
        got_faq = outcome.faq_id
        got_level = outcome.escalation.level if outcome.escalation else "none"
        check_level = outcome.safety_check.level if outcome.safety_check else "none"
        short = row["text"][:90]
        if "faq_id" in row:
            expected = row["faq_id"]
            accepted = {expected, *row.get("accept_faq", [])}
            if expected is None:
                report.oos_total += 1
                if got_faq is None:
                    report.oos_rejected += 1
                else:
                    report.misses.append(f"  out-of-scope answered as {got_faq}: {short!r}")
            else:
                report.faq_total += 1
                if got_faq in accepted:
                    report.faq_correct += 1
                else:
                    alt = f" (offered {', '.join(outcome.alternatives)})" if outcome.alternatives else ""
                    how = f"[{outcome.kind} {outcome.confidence:.0f}]{alt}"
                    report.misses.append(f"  expected {expected}, got {got_faq} {how}: {short!r}")
        expected_level = row.get("escalation")
        if expected_level is None:
            continue
        if expected_level == "none":
            report.none_total += 1
            accepted_levels = set(row.get("accept_escalation", ["none"])) | {"none"}
            if got_level not in accepted_levels:
                report.none_escalated += 1
                cat = outcome.escalation.category if outcome.escalation else ""
                report.misses.append(f"  false escalation {got_level} ({cat}): {short!r}")
            elif check_level not in accepted_levels:
                report.none_checked += 1
                cat = outcome.safety_check.category if outcome.safety_check else ""
                report.misses.append(f"  safety question {check_level} ({cat}): {short!r}")
        elif expected_level in LEVELS:
            report.level_total[expected_level] += 1
            ok = {"emergency"} if expected_level == "emergency" else {"urgent", "emergency"}
            ok |= set(row.get("accept_escalation", []))
            report.level_alarm[expected_level] += got_level in ok
            if got_level in ok or check_level in ok:
                report.level_hit[expected_level] += 1
            else:
                report.misses.append(
                    f"  expected {expected_level}, got {got_level} (question: {check_level}): {short!r}"
                )
    return report
