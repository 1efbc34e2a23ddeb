"""A child process for the crash tests (tests/storage/test_crash.py); the parent SIGKILLs it part-way.

    followup_child.py deliver DB LOG DELAY   build the runtime on DB and send every due check-in through an
                                             adapter that appends "<followup id> <user> <chat>" to LOG per delivery
                                             (flush + fsync), sleeping DELAY seconds inside each send
    followup_child.py burst DB LOG N         add N follow-ups one by one; after each commit append its id to LOG
    followup_child.py serve DB LOG DELAY,LEASE,STALL
                                             run the scheduler's loop (until SIGTERM) as if on another machine (its
                                             leases end only by time, never because this process is seen to be gone),
                                             with LEASE-second claims; each delivery appends "<id> <user> <chat> <pid>
                                             <time>" to LOG; the STALL-th send (0: none) prints "stalled" and hangs

DB is a SQLite file or a postgresql:// url. Every mode prints "ready" on stdout once the database is open.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.core.messages import ChatRef, Reply  # noqa: E402
from bot.core.payloads import decode  # noqa: E402
from bot.storage.sqlite import SQLiteStore  # noqa: E402

PLATFORM = "test"


def append_line(fd: int, line: str) -> None:
    """One write of one whole line, then fsync: a kill after this returns cannot lose it."""
    os.write(fd, line.encode())
    os.fsync(fd)


class FileAdapter:
    """Records each delivery as one durable line in the log file."""

    platform = PLATFORM

    def __init__(self, fd: int, delay: float, *, stall_at: int = 0, stamp: bool = False) -> None:
        self.fd = fd
        self.delay = delay
        self.stall_at = stall_at
        self.stamp = stamp
        self.sends = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        self.sends += 1
        if self.sends == self.stall_at:  # hangs inside a send, holding its claims, until the parent kills it
            print("stalled", flush=True)
            await asyncio.sleep(3600)
        await asyncio.sleep(self.delay)  # the network
        ids = {p.args[0] for r in replies for c in r.choices if (p := decode(c.payload)) and p.args[0].isdigit()}
        (followup_id,) = ids
        extra = f" {os.getpid()} {time.time():.3f}" if self.stamp else ""
        await asyncio.to_thread(append_line, self.fd, f"{followup_id} {target.user_id} {target.chat_id}{extra}\n")


async def deliver(db: str, log: str, delay: float) -> None:
    from bot.bootstrap import build
    from bot.config import Settings

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    runtime = build(Settings(), knowledge_path=ROOT / "knowledge", db_path=db)
    async with runtime:
        runtime.add_adapter(FileAdapter(fd, delay))
        print("ready", flush=True)
        sent = await runtime.scheduler.run_due()
        print(f"sent {sent}", flush=True)
    os.close(fd)


async def serve(db: str, log: str, delay: float, lease: float, stall_at: int) -> None:
    from bot.bootstrap import build
    from bot.config import Settings

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    runtime = build(Settings(), knowledge_path=ROOT / "knowledge", db_path=db)
    async with runtime:
        scheduler = runtime.scheduler
        scheduler.lease = timedelta(seconds=lease)
        scheduler.owner = f"elsewhere-{os.getpid()}:{os.getpid()}:serve"  # another host: no pid check shortcut
        runtime.add_adapter(FileAdapter(fd, delay, stall_at=stall_at, stamp=True))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, scheduler.stop)
        print(f"ready {scheduler.owner}", flush=True)
        await scheduler.run()
    os.close(fd)


async def burst(db: str, log: str, n: int) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    async with SQLiteStore(db) as store:
        print("ready", flush=True)
        due = datetime.now(UTC) + timedelta(days=3)
        pid = os.getpid()
        for i in range(n):
            user = await store.get_or_create_user(PLATFORM, f"burst-{pid}-{i}")
            followup_id = await store.add_followup(user, f"dm-{pid}-{i}", "self-care-mild", due)
            os.write(fd, f"{followup_id}\n".encode())  # only after the commit returned
    os.close(fd)


def main(argv: list[str]) -> int:
    mode, db, log, arg = argv
    if mode == "serve":
        delay, lease, stall = arg.split(",")
        asyncio.run(serve(db, log, float(delay), float(lease), int(stall)))
    elif mode == "deliver":
        asyncio.run(deliver(db, log, float(arg)))
    elif mode == "burst":
        asyncio.run(burst(db, log, int(arg)))
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
