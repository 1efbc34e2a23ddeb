"""Moderator reports on a real SQLite file filled through engine.handle: grouped unanswered questions, counts only."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import ROOT, build_shipped, shipped_knowledge, vague_questions

from bot.config import Settings
from bot.core.engine import EngineOptions
from bot.core.messages import IncomingMessage, Outcome
from bot.core.ports import ManualClock
from bot.core.reports import group_unanswered, parse_period

#: one id per message, so the test can look for every one of them in the reports
USERS = [f"user-{90817263 + i}" for i in range(40)]
BOSTON = ["how do i qualify for boston marathon", "can i qualify for the boston marathon",
          "boston marathon qualifying times", "how do i qualify for boston marathon"]
ASHWA = ["is ashwagandha good for runners", "ashwagandha for runners"]
OLD = ["does altitude training camp help", "does altitude training camp help"]
ANSWERED = ["what data do you store about me", "who is behind runbot", "my lower back aches", "stretch"]
DID_YOU_MEAN = vague_questions(shipped_knowledge(), 2)
RED_FLAGS = ["my back hurts and i cant control my bladder", "back pain with a fever and feeling really unwell"]


def msg(text: str, n: int, *, moderator: bool = False) -> IncomingMessage:
    user = USERS[n % len(USERS)]
    return IncomingMessage("telegram", user, f"chat-{user}", text=text, is_moderator=moderator,
                           is_private=not moderator)


def runbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def no_user_ids(text: str) -> None:
    for user in USERS:
        assert user not in text and user.split("-")[1] not in text


async def fill(db: Path, clock: ManualClock) -> Counter[str]:
    """Send the messages; returns what the engine did, counted from the outcomes themselves."""
    options = EngineOptions(first_notice=False, rate_limit=False)
    rt = build_shipped(Settings(), clock=clock, db_path=db, options=options)
    seen: Counter[str] = Counter()

    def tally(out: Outcome) -> None:
        seen["messages"] += 1
        seen[out.kind] += 1
        if out.escalation is not None:
            seen[f"escalation-{out.escalation.level}"] += 1

    n = 0
    async with rt:
        now = clock.now()
        clock.advance(days=-20)
        for text in OLD:
            n += 1
            tally(await rt.engine.handle(msg(text, n)))
        clock.set(now)
        for text in [*BOSTON, *ASHWA, *ANSWERED, *DID_YOU_MEAN, *RED_FLAGS]:
            n += 1
            out = await rt.engine.handle(msg(text, n))
            tally(out)
            if text in BOSTON or text in ASHWA:
                assert out.kind == "fallback", (text, out.kind)
        assert seen["answer"] == len(ANSWERED) and seen["did-you-mean"] == len(DID_YOU_MEAN)
        assert seen["escalation-emergency"] == 1 and seen["escalation-urgent"] == 1

        # the moderators' view in the chat: /faq unanswered and /faq stats (the commands count as messages too)
        unanswered = await rt.engine.handle(msg("/faq unanswered 7d", 0, moderator=True))
        stats = await rt.engine.handle(msg("/faq stats", 0, moderator=True))
        refused = await rt.engine.handle(msg("/faq stats", 1))
        for out in (unanswered, stats, refused):
            tally(out)
    text = unanswered.replies[0].text
    assert_unanswered(text, with_old=False)
    no_user_ids(text)
    no_user_ids(stats.replies[0].text)
    # /faq stats ran after /faq unanswered was counted and before itself and the refusal were
    before = Counter(seen)
    before["messages"] -= 2
    assert_stats(stats.replies[0].text, before)
    assert "moderators" in refused.replies[0].text and "messages handled" not in refused.replies[0].text
    return seen


def assert_unanswered(text: str, *, with_old: bool) -> None:
    lines = text.splitlines()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    boston = [line for line in lines if "boston" in line]
    assert len(boston) == 1, text  # three wordings, one group
    assert re.match(rf"^\s*{len(BOSTON)}\s+{today}\s+.*\(\+2 similar\)$", boston[0]), boston[0]
    ashwa = [line for line in lines if "ashwagandha" in line]
    assert len(ashwa) == 1 and re.match(rf"^\s*{len(ASHWA)}\s+{today}\s.*\(\+1 similar\)$", ashwa[0]), ashwa
    assert lines.index(boston[0]) < lines.index(ashwa[0])  # most asked first
    old = [line for line in lines if "altitude" in line]
    if with_old:
        assert len(old) == 1 and re.match(rf"^\s*{len(OLD)}\s+\d{{4}}-\d\d-\d\d\s", old[0])
    else:
        assert old == []
    for asked in [*ANSWERED, *RED_FLAGS]:
        assert asked not in text  # answered questions and (above all) red flags are not listed


def assert_stats(text: str, seen: Counter[str]) -> None:
    labels = {
        "messages handled": seen["messages"],
        "answered from the FAQ": seen["answer"],
        "did-you-mean offered": seen["did-you-mean"],
        "no answer (fallback)": seen["fallback"],
        "emergency escalations": seen["escalation-emergency"],
        "urgent escalations": seen["escalation-urgent"],
    }
    for label, expected in labels.items():
        line = next(line for line in text.splitlines() if line.endswith(label))
        assert int(line.split()[0]) == expected, (label, line)


@pytest.mark.slow
async def test_reports_in_chat_and_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    clock = ManualClock(datetime.now(UTC))
    seen = await fill(db, clock)

    res = runbot("report", "unanswered", "--since", "7d", "--db", str(db), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert_unanswered(res.stdout, with_old=False)
    assert "the last 7 days" in res.stdout
    res30 = runbot("report", "unanswered", "--db", str(db), cwd=tmp_path)
    assert_unanswered(res30.stdout, with_old=True)

    stats = runbot("report", "stats", "--since", "30d", "--db", str(db), cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert_stats(stats.stdout, seen)
    week = runbot("report", "stats", "--since", "7d", "--db", str(db), cwd=tmp_path)
    recent = Counter(seen)
    recent["messages"] -= len(OLD)
    recent["fallback"] -= len(OLD)
    assert_stats(week.stdout, recent)
    for out in (res.stdout, res30.stdout, stats.stdout, week.stdout):
        no_user_ids(out)

    bad = runbot("report", "stats", "--since", "soon", "--db", str(db), cwd=tmp_path)
    assert bad.returncode == 2 and "7d" in bad.stderr
    missing = runbot("report", "stats", "--db", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr


async def test_report_tables_hold_no_user_ids(tmp_path: Path) -> None:
    db = tmp_path / "runbot.db"
    await fill(db, ManualClock(datetime.now(UTC)))
    con = sqlite3.connect(db)
    try:
        dump = "\n".join(str(row) for table in ("unanswered", "stats") for row in con.execute(f"SELECT * FROM {table}"))
    finally:
        con.close()
    assert "boston" in dump
    no_user_ids(dump)


def test_grouping_and_periods() -> None:
    now = datetime.now(UTC)
    rows = [
        {"text": "best gels for long runs", "count": 2, "last_seen": now},
        {"text": "good gel on a long run", "count": 1, "last_seen": now},
        {"text": "what should i do", "count": 5, "last_seen": now},
        {"text": "what should i do about my knee", "count": 1, "last_seen": now},
        {"text": "long run pace", "count": 1, "last_seen": now},
    ]
    groups = group_unanswered(rows)
    assert [(g["text"], g["count"], g["variants"]) for g in groups] == [
        ("what should i do", 5, 1),
        ("best gels for long runs", 3, 2),
        ("long run pace", 1, 1),
        ("what should i do about my knee", 1, 1),
    ]
    assert parse_period("7d").days == 7 and parse_period("2w").days == 14 and parse_period("12h").seconds == 43200
