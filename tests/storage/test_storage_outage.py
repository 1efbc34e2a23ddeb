"""Safety first, storage second (issue 14 item 1), with the real `runbot run --telegram` process and the real
python-telegram-bot client against the fake Bot API on 127.0.0.1:

- the database on a really full filesystem (a 4 MB tmpfs mounted in a private mount namespace with `unshare`, then
  filled up to ENOSPC through /proc/<pid>/root), and
- the database write-locked by another process (a connection holding BEGIN IMMEDIATE),

a new runner's red flag gets the emergency reply within 3 s, an FAQ question is answered (not "Sorry, something went
wrong") and /mydata says it is temporarily unavailable.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT

from bot.core.replies import SORRY
from bot.core.resilience import UNAVAILABLE
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_TOKEN

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmpfs, unshare and /proc are Linux")

#: from the dev sets: an emergency (cauda equina) and a plain FAQ question
RED_FLAG = "sciatica down both legs now instead of just one, and weird numbness around my bum and groin"
QUESTION = "why does my lower back hurt after running"
EMERGENCY_WITHIN = 3.0
WARM_UP, RUNNER, ASKER = 4001, 4002, 4003


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "TELEGRAM_TOKEN": TELEGRAM_TOKEN}


def _config(tmp_path: Path, api: FakeBotAPI, db: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge:\n  path: {KNOWLEDGE}\n  watch: false\n"
        f"database:\n  path: {db}\n"
        "discord:\n  enabled: false\n"
        f"telegram:\n  api_base_url: http://127.0.0.1:{api.port}\n",
        encoding="utf-8",
    )
    return config


@asynccontextmanager
async def _bot(tmp_path: Path, api: FakeBotAPI, argv: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """The bot process, started and polling; stopped with SIGTERM afterwards (exit 0, no traceback)."""
    log_path = tmp_path / "stderr.txt"
    log = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=tmp_path, env=_env(), stdout=log, stderr=log)
    try:
        await api.wait_for(lambda: bool(api.calls_to("deleteWebhook")) or proc.returncode is not None, within=60)
        if proc.returncode is not None:
            text = log_path.read_text()
            if "unshare" in argv[0] and ("Operation not permitted" in text or "mount" in text.splitlines()[0]):
                pytest.skip(f"no private mount namespace here: {text.strip()[:200]}")
            raise AssertionError(f"the bot stopped at start (rc {proc.returncode}): {text[-3000:]}")
        await asyncio.sleep(0.3)  # the first long poll is open
        yield proc
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        stopped_in = time.monotonic() - stopping
        stderr = log_path.read_text()
        assert code == 0, stderr[-3000:]
        assert stopped_in < 5.0, f"the stop took {stopped_in:.1f} s"  # the shutdown budget, storage down or not
        assert "Traceback" not in stderr, stderr[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def _say(api: FakeBotAPI, user: int, text: str, within: float = 10.0) -> tuple[list[str], float]:
    """Send a private message; the bot's replies to it and how long the first one took."""
    before = len(api.sent(user))
    started = time.monotonic()
    await api.send_text(user_id=user, text=text)
    await api.wait_for(lambda: len(api.sent(user)) > before, within=within)
    took = time.monotonic() - started
    await asyncio.sleep(0.3)  # the rest of the replies to this message
    return [m["text"] for m in api.sent(user)[before:]], took


def _fill(folder: Path) -> int:
    """Write a filler file until the filesystem says ENOSPC; returns the bytes written."""
    written = 0
    with (folder / "filler").open("wb", buffering=0) as f:
        chunk = b"\0" * 65536
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        for size in (4096, 1):  # the last few bytes too
            try:
                while True:
                    written += f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return written


def _check_the_emergency(replies: list[str], took: float) -> None:
    assert took < EMERGENCY_WITHIN, f"the emergency reply took {took:.2f} s"
    assert SORRY not in replies
    assert any("999" in text for text in replies), replies  # the escalation: call the emergency number


def _check_the_rest(faq: list[str], faq_took: float, stored: list[str]) -> None:
    """``stored``: the replies to a command that must write (a setting): it says it cannot, rather than pretend."""
    assert SORRY not in faq and faq, faq
    assert faq_took < 5.0, faq_took  # answered from memory after the lock timeout (1 s), not only after it is freed
    assert any(UNAVAILABLE in text for text in stored), stored


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
async def test_red_flag_on_a_full_disk(tmp_path: Path, api: FakeBotAPI) -> None:
    disk = tmp_path / "disk"  # the mount point: a 4 MB tmpfs only the bot's mount namespace sees
    disk.mkdir()
    db = disk / "runbot.db"
    config = _config(tmp_path, api, db)
    script = 'mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" -m bot --config "$3" run --telegram'
    argv = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(disk), sys.executable,
            str(config)]
    async with _bot(tmp_path, api, argv) as proc:
        seen = Path(f"/proc/{proc.pid}/root") / str(disk).lstrip("/")  # the tmpfs, as the bot sees it
        assert (seen / "runbot.db").exists() and not db.exists()  # a different filesystem from the test's
        replies, _ = await _say(api, WARM_UP, QUESTION)  # working before the disk fills
        assert SORRY not in replies
        assert await asyncio.to_thread(_fill, seen) > 0
        with pytest.raises(OSError) as full:  # really full: not even a new small file fits
            (seen / "probe").write_bytes(b"x" * 8192)
        assert full.value.errno == errno.ENOSPC

        replies, took = await _say(api, RUNNER, RED_FLAG)
        _check_the_emergency(replies, took)
        faq, faq_took = await _say(api, ASKER, QUESTION)
        stored, _ = await _say(api, ASKER, "/followups off")
        _check_the_rest(faq, faq_took, stored)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "full" in stderr  # the storage failures are logged, never shown to the runner


@pytest.mark.slow
async def test_red_flag_while_another_process_holds_the_write_lock(tmp_path: Path, api: FakeBotAPI) -> None:
    db = tmp_path / "runbot.db"
    config = _config(tmp_path, api, db)
    async with _bot(tmp_path, api, [sys.executable, "-m", "bot", "--config", str(config), "run", "--telegram"]):
        replies, _ = await _say(api, WARM_UP, QUESTION)
        assert SORRY not in replies
        holder = sqlite3.connect(db, timeout=10, isolation_level=None)  # this test process: another process
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):  # really locked for everyone else
                sqlite3.connect(db, timeout=0.1, isolation_level=None).execute("BEGIN IMMEDIATE")
            replies, took = await _say(api, RUNNER, RED_FLAG)
            _check_the_emergency(replies, took)
            faq, faq_took = await _say(api, ASKER, QUESTION)
            stored, _ = await _say(api, ASKER, "/followups off")
            _check_the_rest(faq, faq_took, stored)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # the bookkeeping follows once the lock is gone: the escalation is logged (retried in the background)
        deadline = time.monotonic() + 15
        logged = 0
        while time.monotonic() < deadline and not logged:
            await asyncio.sleep(0.25)
            with sqlite3.connect(db, timeout=5) as check:
                # no consent given: level, category and time only, linked to nobody (issue 16)
                logged = check.execute("SELECT COUNT(*) FROM escalations WHERE user_id IS NULL").fetchone()[0]
        assert logged == 1
        with sqlite3.connect(db, timeout=5) as check:  # and no row about the runner at all
            assert check.execute("SELECT COUNT(*) FROM users WHERE platform_user_id = ?", (str(RUNNER),)).fetchone()[
                0] == 0


@pytest.mark.slow
async def test_stop_while_another_process_holds_the_write_lock(tmp_path: Path, api: FakeBotAPI) -> None:
    """SIGTERM with escalation bookkeeping and counters still waiting for the lock: exit 0 within the 5 s budget."""
    db = tmp_path / "runbot.db"
    config = _config(tmp_path, api, db)
    holder = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        async with _bot(tmp_path, api, [sys.executable, "-m", "bot", "--config", str(config), "run", "--telegram"]):
            replies, _ = await _say(api, WARM_UP, QUESTION)
            assert SORRY not in replies
            holder.execute("BEGIN IMMEDIATE")
            replies, took = await _say(api, RUNNER, RED_FLAG)
            _check_the_emergency(replies, took)
        # _bot asserted: exit 0, within 5 s, no traceback
    finally:
        holder.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "locked" in stderr  # what could not be written is said in the log
