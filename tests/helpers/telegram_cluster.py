"""Many runners talking to several real bot processes through the fake Telegram webhook (issue 18).

Shared by the acceptance test (tests/ops/test_telegram_workers.py) and the benchmark (bench/bench_scale.py).

Telegram's side is played here: each runner's updates are POSTed to the bots' webhook receivers (round-robin over
them, as a reverse proxy would; at most 40 requests at once, Telegram's default), each after the previous one got its
200, without waiting for the replies except where a runner must see a button before pressing it. The fake Bot API
(tests/adapters/fake_telegram.py) records the replies. A runner's conversation: a FAQ question, /triage, "Yes, I
agree" pressed on the consent question, then "no" typed to the first triage question (4 updates). What each chat
should receive is the real engine's answer to the same conversation, run in this process on an in-memory store.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from support import build_shipped

from bot.config import RateLimitSettings, Settings
from bot.core.messages import IncomingMessage
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT, TELEGRAM_TOKEN

ROOT = Path(__file__).resolve().parent.parent.parent
KNOWLEDGE = ROOT / "knowledge"
SECRET = "cluster_Secret-2026"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
QUESTION = "why does my lower back hurt after running"
AGREE = "Yes, I agree"
#: the updates of one runner's conversation (the third is a button press)
UPDATES_PER_USER = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Expected:
    """What one chat receives for the conversation, in order, and the triage step it ends on."""

    texts: tuple[str, ...]
    consent_at: int  # how many messages have arrived when the consent question (with its buttons) is there
    step_id: str


async def expected_conversation() -> Expected:
    """The real engine's replies to the conversation (one chat, in memory)."""
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    async with build_shipped(settings, db_path=":memory:") as rt:
        msg = IncomingMessage("telegram", "1", "1", "", is_private=True)
        texts: list[str] = []
        out = await rt.engine.handle(replace(msg, text=QUESTION))
        texts += [r.text for r in out.replies]
        out = await rt.engine.handle(replace(msg, text="/triage"))
        texts += [r.text for r in out.replies]
        consent_at = len(texts)
        payload = next(c.payload for r in out.replies for c in r.choices if c.label == AGREE)
        out = await rt.engine.handle(replace(msg, choice=payload))
        texts += [r.text for r in out.replies]
        out = await rt.engine.handle(replace(msg, text="no"))
        texts += [r.text for r in out.replies]
        user = await rt.store.find_user("telegram", "1")
        assert user is not None
        state = await rt.store.get_triage(user)
        assert state is not None, "the conversation should end inside the triage"
        return Expected(tuple(texts), consent_at, state.step_id)


@dataclass
class BotProcess:
    """`python -m bot run --telegram` in webhook mode against the fake Bot API, its stderr kept in a file."""

    folder: Path
    api_port: int
    database: str  # the YAML lines of the database: section
    mode: str = "webhook"
    extra: str = ""  # more lines of the telegram: section, e.g. "  inbox: shared\n"
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tg"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        config.write_text(
            f"knowledge:\n  path: {KNOWLEDGE}\n  watch: false\n{self.database}"
            f"discord:\n  enabled: false\nfollowups:\n  enabled: false\n"
            f"telegram:\n  api_base_url: http://127.0.0.1:{self.api_port}\n  mode: {self.mode}\n"
            f"  webhook_url: {self.url}\n  webhook_listen: 127.0.0.1\n  webhook_port: {self.port}\n"
            f"  send_rate: 10000\n{self.extra}",  # the fake has no global limit: the bot is measured, not Telegram
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TELEGRAM_TOKEN=TELEGRAM_TOKEN,
                   TELEGRAM_WEBHOOK_SECRET=SECRET)
        with (self.folder / "stderr.txt").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(config), "run", "--telegram",
                cwd=self.folder, env=env, stdout=log, stderr=log,
            )

    def stderr(self) -> str:
        path = self.folder / "stderr.txt"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    async def stop(self) -> int:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return proc.returncode if proc is not None else 0
        proc.terminate()
        try:
            return await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            return await proc.wait()


class Telegram:
    """Telegram's webhook side: numbered updates POSTed round-robin to the receivers, at most 40 at once."""

    def __init__(self, api: FakeBotAPI, urls: Sequence[str]) -> None:
        self.api = api
        self._urls = itertools.cycle(urls)
        self._ids = itertools.count(1)
        self._slots = asyncio.Semaphore(40)
        self.posted = 0

    async def post(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._ids)
        url = next(self._urls)
        for attempt in range(50):  # Telegram retries an update that did not get its 200
            try:
                async with self._slots, http.post(url, json=update, headers={HEADER: SECRET}) as response:
                    if response.status == 200:
                        self.posted += 1
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(min(0.05 * (attempt + 1), 1.0))
        raise AssertionError(f"update {update['update_id']} never got its 200")

    async def text(self, http: aiohttp.ClientSession, user: int, text: str) -> None:
        await self.post(http, {"message": self.api.build_message(user_id=user, text=text)})

    async def press(self, http: aiohttp.ClientSession, user: int, message: dict[str, Any], data: str) -> None:
        await self.post(http, {"callback_query": {
            "id": f"cb{user}-{message['message_id']}", "from": self.api.user(user), "chat_instance": f"ci{user}",
            "message": message, "data": data,
        }})


async def wait_until(predicate: Any, within: float, what: str, bots: Sequence[BotProcess]) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        for bot in bots:
            if bot.proc is not None and bot.proc.returncode is not None:
                code = bot.proc.returncode
                raise AssertionError(f"a bot exited ({code}) waiting for {what}:\n{bot.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _consent(api: FakeBotAPI, user: int) -> tuple[dict[str, Any], str] | None:
    """The consent question the chat received and its "Yes, I agree" button's data (None: not there yet)."""
    for message in api.sent(user):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == AGREE:
                    return message, button["callback_data"]
    return None


async def converse(
    telegram: Telegram, http: aiohttp.ClientSession, user: int, expected: Expected, bots: Sequence[BotProcess],
    within: float,
) -> None:
    """One runner's conversation: question and /triage, "Yes, I agree" once the consent question is there, "no"."""
    api = telegram.api
    await telegram.text(http, user, QUESTION)
    await telegram.text(http, user, "/triage")
    await wait_until(lambda: _consent(api, user) is not None, within, f"the consent question ({user})", bots)
    consent, data = _consent(api, user)  # type: ignore[misc]
    await telegram.press(http, user, consent, data)
    await telegram.text(http, user, "no")


async def run_cluster(
    api: FakeBotAPI, bots: Sequence[BotProcess], users: Sequence[int], expected: Expected, *, within: float = 300.0
) -> float:
    """Every runner's conversation through the receivers; returns the seconds from the first POST to the last reply."""
    receivers = [b.url for b in bots if b.mode == "webhook"]
    telegram = Telegram(api, receivers)
    total = len(users) * len(expected.texts)
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        await asyncio.gather(*(converse(telegram, http, u, expected, bots, within) for u in users))
        last = expected.texts[-1]
        await wait_until(lambda: api.sent_count >= total and all(
            any(m["text"] == last for m in api.sent(u)) for u in users), within, "every reply", bots)
        return time.monotonic() - started


@dataclass
class Verdict:
    """How the chats' replies compare with the real engine's answers."""

    wrong: dict[int, list[str]]  # chats whose replies (a repeated notice aside) are not exactly the expected ones
    repeated_notices: int  # first-message notices shown again (a runner with no row whose chat changed process)


def check(api: FakeBotAPI, users: Sequence[int], expected: Expected) -> Verdict:
    """Every chat must have exactly the expected replies, once each and in order. The first-message notice may come
    twice: for a runner who has agreed to nothing, only the process that showed it remembers it (issue 16), and a
    chat quiet for longer than its lease may move to another process; those are counted, not failed."""
    notice = expected.texts[0]
    wrong: dict[int, list[str]] = {}
    repeated = 0
    for user in users:
        texts = [m["text"] for m in api.sent(user)]
        first = texts.index(notice) if notice in texts else -1
        kept = [t for i, t in enumerate(texts) if t != notice or i == first]
        repeated += len(texts) - len(kept)
        if tuple(kept) != expected.texts:
            wrong[user] = [t[:40] for t in texts]
    return Verdict(wrong, repeated)


def new_api() -> FakeBotAPI:
    return FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
