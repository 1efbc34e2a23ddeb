"""The durable inbox in the real process: 300 runners x 3 queued messages, the bot stopped part-way (SIGTERM or
SIGKILL) and started again -> every message answered, few duplicates; SIGTERM exits within 5 s."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT, build_shipped

from bot.config import Settings
from bot.core.messages import IncomingMessage
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT, TELEGRAM_TOKEN

USERS = 300
FIRST_USER = 810_000
QUESTIONS = (
    "why does my lower back hurt after running",
    "should I stretch before a run",
    "what shoes help with back pain",
)
MESSAGES = USERS * len(QUESTIONS)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "TELEGRAM_TOKEN": TELEGRAM_TOKEN}


async def _expected_first_lines() -> tuple[set[str], str]:
    """The first line of each question's answer and of the first-contact notice (the real engine, in memory)."""
    async with build_shipped(Settings(), db_path=":memory:") as rt:
        first = await rt.engine.handle(IncomingMessage("telegram", "probe", "probe", text=QUESTIONS[0]))
        notice = first.replies[0].text.splitlines()[0]
        answers = set()
        for question in QUESTIONS:
            out = await rt.engine.handle(IncomingMessage("telegram", "probe", "probe", text=question))
            assert out.kind == "answer", (question, out.kind)
            answers.add(out.replies[-1].text.splitlines()[0])
    assert len(answers) == len(QUESTIONS)
    return answers, notice


class Bot:
    """`python -m bot run --telegram` against the fake, stderr kept in a file."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.db = tmp_path / "runbot.db"
        self.config = tmp_path / "config.yaml"
        self.config.write_text(
            f"knowledge:\n  path: {KNOWLEDGE}\n  watch: false\ndatabase:\n  path: {self.db}\n"
            f"discord:\n  enabled: false\ntelegram:\n  api_base_url: http://127.0.0.1:{port}\n",
            encoding="utf-8",
        )
        self.tmp_path = tmp_path
        self.runs = 0

    async def start(self) -> asyncio.subprocess.Process:
        self.runs += 1
        log = (self.tmp_path / f"stderr-{self.runs}.txt").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(self.config), "run", "--telegram",
            cwd=self.tmp_path, env=_env(), stdout=log, stderr=log,
        )
        log.close()
        return proc

    def stderr(self) -> str:
        return "\n".join((self.tmp_path / f"stderr-{i}.txt").read_text() for i in range(1, self.runs + 1))


async def _wait(predicate: object, within: float, what: str, proc: asyncio.subprocess.Process, bot: Bot) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if proc.returncode is not None:
            raise AssertionError(f"the bot exited ({proc.returncode}) waiting for {what}:\n{bot.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _chats_answered(api: FakeBotAPI, answers: set[str]) -> int:
    done = 0
    for i in range(USERS):
        firsts = {m["text"].splitlines()[0] for m in api.sent(FIRST_USER + i)}
        done += answers <= firsts
    return done


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_every_queued_message_is_answered_across_a_restart(tmp_path: Path, sig: signal.Signals) -> None:
    answers, notice = await _expected_first_lines()
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await api.start()
    bot = Bot(tmp_path, api.port)
    for q in QUESTIONS:  # 900 messages waiting at "Telegram" before the bot starts
        for i in range(USERS):
            await api.send_text(user_id=FIRST_USER + i, text=q)
    proc = await bot.start()
    try:
        await _wait(lambda: len(api.sent()) >= 300, 90, "the first 300 replies", proc, bot)
        at_signal = len(api.sent())
        started = time.monotonic()
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 15)
        elapsed = time.monotonic() - started
        if sig == signal.SIGTERM:
            assert code == 0, bot.stderr()[-3000:]
            assert elapsed < 5.0, f"shutdown took {elapsed:.1f} s"
        assert len(api.sent()) < USERS * (len(QUESTIONS) + 1), "everything was answered before the stop"

        proc = await bot.start()
        await _wait(lambda: _chats_answered(api, answers) == USERS, 150, "every message answered", proc, bot)
        await asyncio.sleep(1.0)  # anything still to come (a duplicate) arrives now
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await api.stop()
    stderr = bot.stderr()
    assert "Traceback" not in stderr, stderr[-3000:]

    per_chat = {FIRST_USER + i: [m["text"].splitlines()[0] for m in api.sent(FIRST_USER + i)] for i in range(USERS)}
    kinds = Counter(line for lines in per_chat.values() for line in lines)
    assert set(kinds) <= answers | {notice}, set(kinds) - answers - {notice}  # nothing but answers and the notice
    for chat, lines in per_chat.items():
        assert answers <= set(lines), f"chat {chat} is missing an answer: {lines}"
    # The one-time notice is recorded as shown only once its delivery finished: one cut off by the stop is shown
    # after the restart (issue 14; before, 86-128 of the 300 chats never got it).
    without_notice = sum(notice not in lines for lines in per_chat.values())
    assert without_notice == 0, f"{without_notice} chat(s) never got the first-message notice"
    # the notice of a runner with no row is kept in the process's memory (issue 16): the restarted process may show
    # it once more (at most once per process); answers are what must not repeat
    assert all(lines.count(notice) <= 2 for lines in per_chat.values())
    answers_only = {chat: [x for x in lines if x != notice] for chat, lines in per_chat.items()}
    duplicates = sum(len(lines) - len(set(lines)) for lines in answers_only.values())
    repeated = Counter(line[:30] for lines in answers_only.values() for line in set(lines) if lines.count(line) > 1)
    limit = 0.01 if sig == signal.SIGTERM else 0.02
    assert duplicates <= limit * MESSAGES, f"{duplicates} duplicate replies (sent {at_signal} before the stop)"
    with sqlite3.connect(bot.db) as conn:
        pending = conn.execute("SELECT COUNT(*) FROM inbox WHERE state = 'pending'").fetchone()[0]
        kept = conn.execute("SELECT COUNT(*) FROM inbox WHERE payload != ''").fetchone()[0]
    assert pending == 0 and kept == 0, "answered messages leave no text behind in the inbox"
    print(f"{sig.name}: {at_signal} replies before the stop, {duplicates} duplicate(s), stop took {elapsed:.1f} s, "
          f"{without_notice} chat(s) without the notice; repeated: {dict(repeated)}")
