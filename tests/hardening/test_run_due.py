"""`runbot followups run-due` in real processes against the fake Telegram: claimed exactly once, sent over HTTP only."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT

from bot.core.followups import CHECKIN_TEXT
from bot.storage.sqlite import SQLiteStore
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT, TELEGRAM_TOKEN

DUE = 200
FIRST_USER = 700_000


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "TELEGRAM_TOKEN": TELEGRAM_TOKEN}


def _config(tmp_path: Path, db: Path, port: int) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge:\n  path: {KNOWLEDGE}\n  watch: false\ndatabase:\n  path: {db}\n"
        f"discord:\n  enabled: false\ntelegram:\n  api_base_url: http://127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    return config


async def _seed(db: Path, n: int) -> None:
    now = datetime.now(UTC)
    async with SQLiteStore(db) as store:
        for i in range(n):
            uid = str(FIRST_USER + i)
            user = await store.get_or_create_user("telegram", uid)
            await store.add_followup(user, uid, "self-care-mild", now - timedelta(minutes=30) + timedelta(seconds=i))


async def _states(db: Path) -> Counter[str]:
    async with SQLiteStore(db) as store:
        rows = await store.list_followups(("pending", "sending", "awaiting", "failed", "dropped"))
    return Counter(f.state for f in rows)


async def _run_due(config: Path, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "followups", "run-due", cwd=cwd, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_two_run_due_processes_send_each_checkin_exactly_once(tmp_path: Path) -> None:
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    api.delays["sendMessage"] = 0.01  # a little network time, so the two processes overlap
    await api.start()
    db = tmp_path / "runbot.db"
    await _seed(db, DUE)
    config = _config(tmp_path, db, api.port)
    try:
        results = await asyncio.gather(_run_due(config, tmp_path), _run_due(config, tmp_path))
    finally:
        await api.stop()
    sent_counts = []
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err, err
        sent_counts.append(int(out.split("Sent ")[1].split()[0]))
    per_chat = Counter(int(c.params["chat_id"]) for c in api.calls_to("sendMessage"))
    assert set(per_chat) == {FIRST_USER + i for i in range(DUE)}, "a due check-in was not sent"
    assert max(per_chat.values()) == 1, [chat for chat, n in per_chat.items() if n > 1]
    assert all(c.params["text"] == CHECKIN_TEXT for c in api.calls_to("sendMessage"))
    assert sum(sent_counts) == DUE
    assert all(sent_counts), f"one process claimed everything, nothing ran concurrently: {sent_counts}"
    # HTTP only: no poller, no webhook, no command menu (they would clash with the running bot)
    assert not {c.method for c in api.calls} & {"getUpdates", "deleteWebhook", "setWebhook", "setMyCommands"}
    assert await _states(db) == Counter({"awaiting": DUE})


@pytest.mark.slow
async def test_run_due_beside_a_running_bot_does_not_touch_its_updates(tmp_path: Path) -> None:
    """The running bot holds the long poll; run-due neither polls nor deletes the webhook, so nothing clashes."""
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await api.start()
    db = tmp_path / "runbot.db"
    await _seed(db, 3)
    config = _config(tmp_path, db, api.port)
    try:
        code, out, err = await _run_due(config, tmp_path)
    finally:
        await api.stop()
    assert code == 0, err
    assert "Sent 3 due check-in(s)." in out
    assert [c.method for c in api.calls if c.method != "sendMessage"] == ["getMe"]
