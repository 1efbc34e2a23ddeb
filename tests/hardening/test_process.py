"""The real `runbot` process: a broken knowledge folder is a clean exit 1; SIGTERM/SIGINT shut down cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT

from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT, TELEGRAM_TOKEN

QUESTION = "why does my lower back hurt after running"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def _broken_copy(tmp_path: Path, how: str) -> tuple[Path, str, int]:
    """A copy of the shipped knowledge with one file broken; returns the folder, file name and the bad line."""
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    target = folder / "faq-bot.yaml"
    lines = target.read_text(encoding="utf-8").splitlines()
    if how == "syntax":
        bad = 7
        lines[bad - 1] = "      - what is this bot: [unclosed"
    else:  # an alias bomb: refused before anything expands
        bad = len(lines) + 1
        lines += ["bomb: &a [x, x, x, x, x, x, x, x, x]", "bomb2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
                  "bomb3: [*b, *b, *b, *b, *b, *b, *b, *b, *b]"]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder, target.name, bad


@pytest.mark.slow
@pytest.mark.parametrize("how", ["syntax", "aliases"])
@pytest.mark.parametrize("command", ["run", "chat"])
async def test_a_broken_knowledge_folder_is_a_clear_error_exit(tmp_path: Path, command: str, how: str) -> None:
    folder, name, line = _broken_copy(tmp_path, how)
    config = tmp_path / "config.yaml"
    config.write_text(f"knowledge:\n  path: {folder}\ndatabase:\n  path: {tmp_path / 'k.db'}\n", encoding="utf-8")
    args = ["--config", str(config), command] + (["--telegram"] if command == "run" else [])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=tmp_path, env=_env(TELEGRAM_TOKEN=TELEGRAM_TOKEN),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(b""), 60)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "Traceback" not in out.decode()
    where = re.search(rf"{re.escape(name)}:(\d+)", stderr)
    assert where is not None, stderr  # file:line
    if how == "syntax":
        assert int(where.group(1)) >= line, stderr  # where the parser noticed the unclosed bracket
    else:
        assert name in stderr and ("alias" in stderr.lower() or "anchor" in stderr.lower()), stderr


async def _wait(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_graceful_shutdown_with_a_message_in_flight(tmp_path: Path, sig: signal.Signals) -> None:
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await api.start()
    db = tmp_path / "runbot.db"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge:\n  path: {KNOWLEDGE}\n  watch: false\n"
        f"database:\n  path: {db}\n"
        f"discord:\n  enabled: false\n"
        f"telegram:\n  api_base_url: http://127.0.0.1:{api.port}\n",
        encoding="utf-8",
    )
    log = (tmp_path / "stderr.txt").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "run", "--telegram", cwd=tmp_path,
        env=_env(TELEGRAM_TOKEN=TELEGRAM_TOKEN), stdout=log, stderr=log,
    )
    try:
        await _wait(lambda: api.calls_to("deleteWebhook") or proc.returncode is not None, 60, "polling to start")
        assert proc.returncode is None, (tmp_path / "stderr.txt").read_text()
        await asyncio.sleep(0.3)  # the first long poll is open
        api.delays["sendMessage"] = 1.5  # the reply is in flight when the signal arrives
        await api.send_text(user_id=4242, text=QUESTION)
        await _wait(lambda: api.confirmed_offset > api.last_update_id, 10, "the update to be fetched")
        await asyncio.sleep(0.4)  # the engine has answered; sendMessage is waiting in the fake
        assert not api.sent(4242)
        started = time.monotonic()
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 10)
        elapsed = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await api.stop()
        log.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 0, stderr
    assert elapsed < 5.0, f"shutdown took {elapsed:.1f} s"
    assert "Traceback" not in stderr, stderr
    # first contact: the privacy notice and the answer, both delivered although each took 1.5 s
    assert len(api.sent(4242)) == 2, "the replies in flight were delivered before exit"
    _assert_closed_cleanly(db)


def _assert_closed_cleanly(db: Path) -> None:
    """No write-ahead log left behind (the last connection checkpointed and removed it); integrity ok; data there."""
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "database not closed cleanly"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counted = dict(conn.execute("SELECT kind, SUM(count) FROM stats GROUP BY kind").fetchall())
        users = conn.execute("SELECT platform, platform_user_id FROM users").fetchall()
    assert ("telegram", "4242") not in users  # a question stores nothing about the runner (issue 16)
    assert counted.get("messages", 0) >= 1, "buffered counters were flushed at shutdown"
