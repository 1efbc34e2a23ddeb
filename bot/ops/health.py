"""/healthz: is this process fit to serve? Platforms connected, database reachable, scheduler alive.

The database is pinged through the store on every check (at most one ping at a time, the result kept for
``CACHE_SECONDS``): a store with a ``ping()`` (PostgreSQL) is asked; the SQLite store takes its write lock the way a
write would (``BEGIN IMMEDIATE`` then ``ROLLBACK``: nothing is written), so a database another process holds locked,
or a file deleted or replaced under the bot, reads as unreachable. A probe is never cancelled halfway (that could
leave the store's connection inside a transaction): a slow one is reported after ``DB_TIMEOUT`` and finishes alone.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.bootstrap import Runtime

#: a ping slower than this counts as the database being unreachable
DB_TIMEOUT = 2.0
#: a check is reused this long (load balancers and Prometheus may ask often; the database is pinged once)
CACHE_SECONDS = 1.0
#: the scheduler is stuck when its round comes this much later than it planned
SCHEDULER_GRACE = 60.0
#: with the endpoint on, the scheduler comes round at least this often, so its heartbeat means something
HEARTBEAT_SECONDS = 30.0


class DatabaseDown(Exception):
    """The database did not answer the ping (the message says why, in one line)."""


@dataclass(frozen=True)
class Report:
    healthy: bool
    body: dict[str, Any]


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


async def _sqlite_probe(store: Any) -> None:
    """The SQLite store's write lock, taken and given back without writing (see the module docstring)."""
    if getattr(store, "file_lost", False):
        raise DatabaseDown(f"database {store.path} was deleted or replaced while runbot was running")
    identity = getattr(store, "_identity", None)
    if identity is not None:
        if await asyncio.to_thread(_identity, store.path) != identity:
            raise DatabaseDown(f"database {store.path} was deleted or replaced while runbot was running")
    async with store._lock:  # between the store's own writes, never inside one of its transactions
        db = store.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            async with db.execute("SELECT 1 FROM sqlite_master LIMIT 1") as cur:
                await cur.fetchall()
        finally:
            await db.execute("ROLLBACK")


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file, as the store noted it at open: another pair means another file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Health:
    """Checks one running bot (the App's runtime). ``started`` is set by the App once every adapter is up."""

    def __init__(self, runtime: Runtime, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.started = False
        self.scheduler_task: asyncio.Task[None] | None = None
        self._monotonic = monotonic
        self._probe: asyncio.Task[None] | None = None
        self._last: tuple[float, Report] | None = None
        self._checking: asyncio.Task[Report] | None = None

    async def check(self) -> Report:
        """The current report (reused for ``CACHE_SECONDS``; concurrent callers share one check)."""
        now = self._monotonic()
        if self._last is not None and now - self._last[0] < CACHE_SECONDS:
            return self._last[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check(), name="ops-health")
        report = await asyncio.shield(self._checking)
        self._last = (self._monotonic(), report)
        return report

    async def _check(self) -> Report:
        platforms = {name: _platform(adapter) for name, adapter in sorted(self.runtime.adapters.items())}
        database = await self.database()
        scheduler = self.scheduler()
        healthy = (
            self.started and database["ok"] and scheduler["ok"] and all(p["connected"] for p in platforms.values())
        )
        status = "ok" if healthy else ("starting" if not self.started else "unhealthy")
        return Report(healthy, {"status": status, "platforms": platforms, "database": database,
                                "scheduler": scheduler})

    async def database(self) -> dict[str, Any]:
        store = self.runtime.store
        if self._probe is None or self._probe.done():
            ping = getattr(store, "ping", None)
            self._probe = asyncio.create_task(ping() if ping is not None else _sqlite_probe(store), name="db-ping")
        started = self._monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), DB_TIMEOUT)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {DB_TIMEOUT:g} s"}
        except Exception as exc:  # locked, gone, connection refused: the reason in one line, never a traceback
            return {"ok": False, "error": one_line(exc)}
        return {"ok": True, "ms": round((self._monotonic() - started) * 1000, 1)}

    def scheduler(self) -> dict[str, Any]:
        scheduler = self.runtime.scheduler
        task = self.scheduler_task
        if task is not None and task.done():
            return {"ok": False, "error": "the follow-up scheduler stopped"}
        if scheduler.beat is None:
            return {"ok": False, "heartbeat_age_seconds": None}
        age = self._monotonic() - scheduler.beat
        return {"ok": age <= scheduler.planned + SCHEDULER_GRACE, "heartbeat_age_seconds": round(age, 1)}


def _platform(adapter: Any) -> dict[str, Any]:
    health = getattr(adapter, "health", None)
    if health is None:
        return {"connected": True}
    try:
        found = dict(health())
    except Exception as exc:
        return {"connected": False, "error": one_line(exc)}
    found["connected"] = bool(found.get("connected"))
    return found
