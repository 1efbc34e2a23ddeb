"""Crash safety with real child processes and SIGKILL (issues 4 and 9).

(a) the follow-up scheduler killed mid-way through a batch of due check-ins, then restarted: none lost, at most one
    duplicate per follow-up, all left awaiting an answer;
(b) a burst of follow-up writes killed 20 times: the file stays intact and every committed follow-up is there.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "helpers" / "followup_child.py"
PLATFORM = "test"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def read_lines(path: Path) -> list[str]:
    """Whole lines only (a line without its newline was not finished)."""
    if not path.exists():
        return []
    text = path.read_text()
    return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]


def start_child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def kill_after(proc: subprocess.Popen[bytes], log: Path, lines: int, timeout: float = 20.0) -> int:
    """SIGKILL the child once the log has at least ``lines`` whole lines; return how many it had then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(read_lines(log))
        if n >= lines:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            return n
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"child ended before it was killed (rc {proc.returncode}): {err[-2000:]}")
        time.sleep(0.002)
    proc.kill()
    proc.wait(timeout=10)
    raise AssertionError(f"the child did not reach {lines} lines in {timeout} s")


# ---------------------------------------------------------------------------------------------- (a) issue 4
DUE = 40
NOT_DUE = 5
SEND_DELAY = "0.02"


async def seed(db: Path) -> tuple[dict[int, str], set[int]]:
    """DUE check-ins that fell due in the last hours, NOT_DUE ones due in two days; id -> platform user id."""
    now = datetime.now(UTC)
    due: dict[int, str] = {}
    later: set[int] = set()
    async with SQLiteStore(db) as store:
        for i in range(DUE):
            user = await store.get_or_create_user(PLATFORM, f"runner-{i}")
            when = now - timedelta(hours=2) + timedelta(minutes=i)
            fid = await store.add_followup(user, f"dm-runner-{i}", "self-care-mild", when)
            due[fid] = f"runner-{i}"
        for i in range(NOT_DUE):
            user = await store.get_or_create_user(PLATFORM, f"later-{i}")
            later.add(await store.add_followup(user, f"dm-later-{i}", "self-care-mild", now + timedelta(days=2)))
    return due, later


async def states(db: Path) -> dict[int, tuple[str, int]]:
    async with SQLiteStore(db) as store:
        rows = await store.list_followups(("pending", "sending", "awaiting", "done", "failed", "dropped", "cancelled"))
    return {f.id: (f.state, f.checkins) for f in rows}


@pytest.mark.slow
def test_scheduler_killed_mid_batch_loses_nothing_and_duplicates_at_most_once(tmp_path: Path) -> None:
    db, log = tmp_path / "runbot.db", tmp_path / "deliveries.log"
    due, later = asyncio.run(seed(db))
    kills = 3
    seen_at_kill = []
    for _ in range(kills):  # three SIGKILLs, each after at least 5 fresh deliveries
        before = len(read_lines(log))
        seen_at_kill.append(kill_after(start_child("deliver", str(db), str(log), SEND_DELAY), log, before + 5))
    assert seen_at_kill[-1] < DUE, "the batch finished before the last kill: nothing was tested"
    mid = asyncio.run(states(db))
    assert any(state in ("pending", "sending") for fid, (state, _) in mid.items() if fid in due)

    done = subprocess.run(
        [sys.executable, str(CHILD), "deliver", str(db), str(log), SEND_DELAY],
        cwd=ROOT, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"sent " in done.stdout

    deliveries = [line.split() for line in read_lines(log)]
    counts = Counter(int(fid) for fid, _, _ in deliveries)
    for fid, user, chat in deliveries:
        assert due.get(int(fid)) == user and chat == f"dm-{user}"  # the right user and chat, only due ones
    assert set(counts) == set(due), "a due check-in was lost"
    assert max(counts.values()) <= 2, counts
    assert sum(n - 1 for n in counts.values()) <= kills  # at most one duplicate per crash
    final = asyncio.run(states(db))
    assert {fid: final[fid] for fid in due} == {fid: ("awaiting", 1) for fid in due}
    assert {fid: final[fid] for fid in later} == {fid: ("pending", 0) for fid in later}

    again = subprocess.run(  # one more restart: nothing left to send
        [sys.executable, str(CHILD), "deliver", str(db), str(log), SEND_DELAY],
        cwd=ROOT, capture_output=True, timeout=60, check=False,
    )
    assert again.returncode == 0 and b"sent 0" in again.stdout
    assert len(read_lines(log)) == len(deliveries)


# ---------------------------------------------------------------------------------------------- (b) issue 9
ROUNDS = 20


@pytest.mark.slow
def test_burst_of_followups_killed_20_times_stays_intact_and_keeps_every_commit(tmp_path: Path) -> None:
    db, log = tmp_path / "burst.db", tmp_path / "committed.log"
    rng = random.Random(9)
    started = time.monotonic()
    asyncio.run(_create(db))  # schema first, so every child starts writing at once
    for round_no in range(ROUNDS):
        before = len(read_lines(log))
        proc = start_child("burst", str(db), str(log), "1000000")
        kill_after(proc, log, before + rng.randint(1, 80))
        assert proc.returncode == -signal.SIGKILL
        committed = [int(x) for x in read_lines(log)]
        assert len(committed) == len(set(committed))
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"round {round_no}"
            present = {r[0] for r in con.execute("SELECT id FROM followups WHERE state = 'pending'")}
        finally:
            con.close()
        missing = set(committed) - present
        assert not missing, f"round {round_no}: committed follow-ups lost: {sorted(missing)[:10]}"
    assert len(read_lines(log)) >= ROUNDS
    assert time.monotonic() - started < 60


async def _create(db: Path) -> None:
    async with SQLiteStore(db):
        pass
