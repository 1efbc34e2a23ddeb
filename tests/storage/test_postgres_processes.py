"""Several bot processes on one PostgreSQL database (issue 18): 3 real processes drain 1,000 due check-ins and each is
sent exactly once; a process SIGKILLed while it holds claims loses them to the others only when their lease ends,
and none is sent twice. Deliveries go through a file adapter (tests/helpers/followup_child.py) that writes one
fsynced line per send."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pgtest
import pytest
from support import ROOT

from bot.storage import make_store

pytestmark = pytest.mark.slow

CHILD = ROOT / "tests" / "helpers" / "followup_child.py"
DUE = 1000
PROCESSES = 3


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pgtest.fresh_database() as url:
        yield url


async def _seed(url: str, n: int) -> None:
    if await _migrated(url):  # the module's database, emptied between tests
        await pgtest.empty_tables(url)
    now = datetime.now(UTC)
    async with make_store(url) as store:
        for i in range(n):
            user = await store.get_or_create_user("test", f"runner-{i}")
            await store.add_followup(user, f"dm-{i}", "self-care-mild", now - timedelta(minutes=30, seconds=-i))


async def _migrated(url: str) -> bool:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        return bool(await con.fetchval("SELECT to_regclass('public.followups') IS NOT NULL"))
    finally:
        await con.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


async def _child(*args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args, cwd=ROOT, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.startswith(b"ready"), line + (await proc.stderr.read() if proc.stderr else b"")
    return proc


def _log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


async def _until(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _states(url: str) -> Counter[str]:
    async with make_store(url) as store:
        rows = await store.list_followups(("pending", "sending", "awaiting", "failed", "dropped"))
    return Counter(f.state for f in rows)


async def test_three_processes_send_each_of_1000_checkins_exactly_once(pg_url: str, tmp_path: Path) -> None:
    await _seed(pg_url, DUE)
    log = tmp_path / "sent.log"
    started = time.monotonic()
    procs = [await _child("deliver", pg_url, str(log), "0.002") for _ in range(PROCESSES)]
    results = await asyncio.gather(*(asyncio.wait_for(p.communicate(), 300) for p in procs))
    took = time.monotonic() - started
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err, err.decode()[-3000:]
    ids = Counter(fields[0] for fields in _log(log))
    assert len(ids) == DUE and set(ids.values()) == {1}, ids.most_common(3)  # all of them, each once
    shares = [int(out.decode().split("sent ")[1].split()[0]) for out, _ in results]
    assert sum(shares) == DUE and all(shares), shares  # every process did part of the work
    assert await _states(pg_url) == Counter({"awaiting": DUE})
    print(f"{DUE} check-ins by {PROCESSES} processes in {took:.1f} s, shares {shares}")


async def test_a_killed_process_s_claims_go_to_the_others_after_the_lease_none_twice(
    pg_url: str, tmp_path: Path
) -> None:
    await _seed(pg_url, DUE)
    log = tmp_path / "sent.log"
    lease = 4.0
    victim = await _child("serve", pg_url, str(log), f"0.005,{lease},45")  # hangs in its 45th send
    others = [await _child("serve", pg_url, str(log), f"0.005,{lease},0") for _ in range(PROCESSES - 1)]
    try:
        assert victim.stdout is not None
        assert await asyncio.wait_for(victim.stdout.readline(), 120) == b"stalled\n"
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        await victim.wait()
        owner = f"elsewhere-{victim.pid}:{victim.pid}:serve"
        held = await _held(pg_url, owner)  # its claimed, unsent check-ins and their lease ends
        assert held, "the killed process held claims"
        await _until(lambda: len({f[0] for f in _log(log)}) >= DUE, 120, "every check-in sent")
        await asyncio.sleep(1.0)  # anything still to come (a duplicate) arrives now
    finally:
        for proc in others:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in others:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0 and b"Traceback" not in err, err.decode()[-3000:]
    lines = _log(log)
    ids = Counter(fields[0] for fields in lines)
    assert len(ids) == DUE and set(ids.values()) == {1}, ids.most_common(3)  # none lost, none twice
    survivors = {str(p.pid) for p in others}
    for fid, until in held.items():
        [(pid, at)] = [(f[3], float(f[4])) for f in lines if f[0] == fid]
        assert pid in survivors and at >= until, (fid, pid, at - until)  # by another process, after the lease
    assert await _states(pg_url) == Counter({"awaiting": DUE})
    print(f"killed with {len(held)} claim(s) held; the last of them sent "
          f"{max(float(f[4]) for f in lines if f[0] in held) - killed_at:.1f} s after the kill (lease {lease:g} s)")


async def _held(url: str, owner: str) -> dict[str, float]:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        rows = await con.fetch(
            "SELECT id, lease_until FROM followups WHERE state = 'sending' AND lease_owner = $1", owner
        )
    finally:
        await con.close()
    return {str(r["id"]): r["lease_until"].timestamp() for r in rows}
