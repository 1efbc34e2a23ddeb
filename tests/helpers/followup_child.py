"""A child process for the crash tests (tests/storage/test_crash.py); the parent SIGKILLs it part-way.

    followup_child.py deliver DB LOG DELAY   build the runtime on DB and send every due check-in through an
                                             adapter that appends "<followup id> <user> <chat>" to LOG per delivery
                                             (flush + fsync), sleeping DELAY seconds inside each send
    followup_child.py burst DB LOG N         add N follow-ups one by one; after each commit append its id to LOG

Both print "ready" on stdout once the database is open.
"""

from __future__ import annotations

import asyncio
import os
import sys
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

    def __init__(self, fd: int, delay: float) -> None:
        self.fd = fd
        self.delay = delay

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        await asyncio.sleep(self.delay)  # the network
        ids = {p.args[0] for r in replies for c in r.choices if (p := decode(c.payload)) and p.args[0].isdigit()}
        (followup_id,) = ids
        await asyncio.to_thread(append_line, self.fd, f"{followup_id} {target.user_id} {target.chat_id}\n")


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
    if mode == "deliver":
        asyncio.run(deliver(db, log, float(arg)))
    elif mode == "burst":
        asyncio.run(burst(db, log, int(arg)))
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
