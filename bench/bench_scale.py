"""Scale-out benchmark for issue 18: Telegram messages per second end to end, 1, 2 and 4 bot processes on PostgreSQL
against one process on SQLite.

Run from the repository root:  .venv/bin/python bench/bench_scale.py  (add --quick for a smoke run; --json FILE)

Each configuration starts real `python -m bot run --telegram` processes in webhook mode against the fake Bot API
(tests/adapters/fake_telegram.py) on 127.0.0.1 and plays Telegram's side with tests/helpers/telegram_cluster.py:
U runners (default 500) each have a 4-update conversation (a FAQ question, /triage, "Yes, I agree" pressed on the
consent question, "no" to the first triage question), POSTed round-robin to the processes' webhook receivers as a
reverse proxy would, at most 40 requests at once (Telegram's default). Timed from the first POST to the last reply
received; every chat's replies are then compared with what the real engine answers to the same conversation (a run
with a missing, extra or misordered reply is reported, not counted). PostgreSQL runs use a fresh database each
(created and dropped here) and `telegram.inbox: shared`; SQLite runs use one process and the default local inbox.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.helpers.telegram_cluster import (  # noqa: E402  (after the path set-up)
    UPDATES_PER_USER,
    BotProcess,
    Expected,
    check,
    expected_conversation,
    new_api,
    run_cluster,
    wait_until,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_USER = 5_000_000
#: the bots log at WARNING: at INFO httpx logs every Bot API request, which would be most of what is measured
LOGGING = "logging:\n  level: WARNING\n"


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def postgres_available() -> str | None:
    """None when PostgreSQL can be used here, else why not (one line)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[postgres]')"
    try:
        await _pg("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432 is unreachable ({type(exc).__name__})"
    return None


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children (the bots)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


async def one_run(system: str, processes: int, users: int, expected: Expected, folder: Path) -> dict[str, Any]:
    cpu_before = _cpu()
    api = new_api()
    await api.start()
    database = None
    if system == "sqlite":
        db_lines = f"database:\n  path: {folder / 'runbot.db'}\n"
        extra = ""
    else:
        database = f"runbot_bench_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{database}"')
        db_lines = f"database:\n  url: postgresql://postgres@127.0.0.1:5432/{database}\n"
        extra = "  inbox: shared\n"
    bots = [BotProcess(folder / f"bot{i}", api.port, db_lines + LOGGING, extra=extra) for i in range(processes)]
    try:
        for bot in bots:
            await bot.start()
        await wait_until(lambda: len(api.calls_to("setWebhook")) >= processes, 120, "every process", bots)
        runners = [FIRST_USER + i for i in range(users)]
        seconds = await run_cluster(api, bots, runners, expected, within=600)
        await asyncio.sleep(1.0)  # a duplicate would arrive now
        verdict = check(api, runners, expected)
    finally:
        for bot in bots:
            await bot.stop()
        await api.stop()
        if database is not None:
            await _pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    errors = sum("Traceback" in bot.stderr() for bot in bots)
    cpu_after = _cpu()
    updates = users * UPDATES_PER_USER
    return {
        "system": system, "processes": processes, "users": users, "updates": updates, "seconds": round(seconds, 2),
        "updates_per_s": round(updates / seconds, 1), "replies_per_s": round(users * len(expected.texts) / seconds, 1),
        "wrong_chats": len(verdict.wrong), "repeated_notices": verdict.repeated_notices, "tracebacks": errors,
        # CPU over the whole run (start-up and shutdown included): the bots, and this process (the fake Telegram)
        "bot_cpu_s": round(cpu_after[1] - cpu_before[1], 1), "harness_cpu_s": round(cpu_after[0] - cpu_before[0], 1),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="100 runners, 1 run: a smoke run, not for figures")
    parser.add_argument("--json", metavar="FILE", help="also write every run's figures here")
    args = parser.parse_args()
    users, runs = (100, 1) if args.quick else (args.users, args.runs)
    expected = await expected_conversation()
    configs = [("sqlite", 1)]
    why_not = await postgres_available()
    if why_not is None:
        configs += [("postgres", 1), ("postgres", 2), ("postgres", 4)]
    else:
        print(f"PostgreSQL skipped: {why_not}", file=sys.stderr)
    results: list[dict[str, Any]] = []
    for run in range(runs):
        for system, processes in configs:  # interleaved, so the machine's load drifts over all of them alike
            with tempfile.TemporaryDirectory(prefix="runbot-bench-") as tmp:
                started = time.monotonic()
                result = await one_run(system, processes, users, expected, Path(tmp))
                result["run"] = run + 1
                results.append(result)
                print(f"run {run + 1}: {system} x{processes}: {result['updates_per_s']} updates/s "
                      f"({result['seconds']} s; wrong chats {result['wrong_chats']}, repeated notices "
                      f"{result['repeated_notices']}; bots' CPU "
                      f"{result['bot_cpu_s']} s, fake Telegram's {result['harness_cpu_s']} s; "
                      f"wall {time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(f"\n{users} runners x {UPDATES_PER_USER} updates ({users * UPDATES_PER_USER} updates, "
          f"{users * len(expected.texts)} replies) per run, median of {runs}\n")
    print("| database | processes | updates/s | replies/s | seconds | runs (updates/s) | wrong chats "
          "| repeated notices |")
    print("|---|---|---|---|---|---|---|---|")
    for system, processes in configs:
        mine = [r for r in results if (r["system"], r["processes"]) == (system, processes)]
        rate = statistics.median(r["updates_per_s"] for r in mine)
        replies = statistics.median(r["replies_per_s"] for r in mine)
        seconds = statistics.median(r["seconds"] for r in mine)
        each = " / ".join(f"{r['updates_per_s']:g}" for r in mine)
        wrong = sum(r["wrong_chats"] for r in mine)
        notices = " / ".join(str(r["repeated_notices"]) for r in mine)
        print(f"| {system} | {processes} | {rate:g} | {replies:g} | {seconds:g} | {each} | {wrong} | {notices} |")
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
