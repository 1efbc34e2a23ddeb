"""The PostgreSQL store's connection: a pool, numbered migrations under an advisory lock, one-line start errors,
and the per-user transaction that serialises one user's messages across processes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.core.ports import StartupError
from bot.core.store import StoreUnavailable
from bot.storage.common import SchemaTooNew, migrations

log = logging.getLogger(__name__)

#: the environment variable the database password is read from (never the config file, never logged)
PASSWORD_ENV = "RUNBOT_DATABASE_PASSWORD"
#: the driver's errors that mean "storage is unavailable right now" rather than a bug in runbot
PG_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
)
#: connections per process; a message being handled holds one for its whole turn (see ``serialized``)
POOL_SIZE = 10
#: connections never taken by turns: what a turn itself may ask for meanwhile (flood control, the notice, the inbox,
#: the counters' batches, claims) always finds one, so turns cannot starve each other of connections
RESERVED = 3
CONNECT_SECONDS = 5.0
#: how long a statement may wait for a free connection before the message is answered from memory
ACQUIRE_SECONDS = 2.0
#: a statement (or a wait for another process's lock on the same user) that takes longer is given up
STATEMENT_SECONDS = 5.0
#: the advisory lock key that lets one process at a time apply migrations
MIGRATION_LOCK = 0x72756E626F74  # "runbot"


class DatabaseUnusable(StartupError):
    """The PostgreSQL database cannot be reached or used; the message names it (no password) and what to do."""


def safe_url(url: str) -> str:
    """``url`` without a password (for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def user_lock_key(platform: str, platform_user_id: str) -> int:
    """A signed 64-bit advisory-lock key for one user (a hash: the id itself never reaches pg_locks)."""
    digest = hashlib.sha256(f"user:{platform}:{platform_user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(slots=True)
class _Turn:
    """One user's turn: its connection and transaction, usable only by the task that opened it."""

    con: Any
    task: asyncio.Task[Any] | None


class PostgresBase:
    """The pool, the schema, and where a statement runs (the task's turn, else a pooled connection)."""

    def __init__(
        self, url: str, *, password: str | None = None, clock: Any = None, pool_size: int = POOL_SIZE
    ) -> None:
        self.url = url
        self._password = password if password is not None else os.environ.get(PASSWORD_ENV) or None
        self._clock = clock
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        #: turns at once: the pool minus the reserved connections
        self._turns = asyncio.Semaphore(max(1, pool_size - RESERVED))
        self._turn: ContextVar[_Turn | None] = ContextVar(f"runbot-turn-{id(self)}", default=None)
        self._pending_stats: dict[tuple[str, str], int] = {}
        self._pending_unanswered: dict[tuple[str, int], tuple[int, str, str]] = {}
        self._flushing: asyncio.Task[None] | None = None
        #: called with a one-line problem report; set by bootstrap (nothing reports through it on PostgreSQL yet)
        self.on_problem: Callable[[str], Awaitable[None]] | None = None

    def describe(self) -> str:
        return f"PostgreSQL database {safe_url(self.url)}"

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    # ----------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        """Connect and migrate; raises DatabaseUnusable with one line (the URL without password, what to do)."""
        where = safe_url(self.url)
        try:
            self._pool = await asyncio.wait_for(
                asyncpg.create_pool(
                    self.url, password=self._password, min_size=1, max_size=self._pool_size,
                    command_timeout=STATEMENT_SECONDS, timeout=CONNECT_SECONDS,
                    server_settings={"application_name": "runbot"},
                ),
                CONNECT_SECONDS + 1,
            )
            await self._migrate()
        except SchemaTooNew as exc:
            await self._abandon()
            raise DatabaseUnusable(
                f"database {where} has schema version {exc.found}, made by a newer runbot (this one knows up to "
                f"{exc.newest}): upgrade runbot, or set database.url to another database"
            ) from None
        except (*PG_ERRORS, TimeoutError) as exc:
            await self._abandon()
            raise DatabaseUnusable(describe_pg_error(where, exc)) from None
        except BaseException:
            await self._abandon()
            raise

    async def _abandon(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except BaseException:  # closing must never raise over the error that led here
                pool.terminate()

    async def close(self) -> None:
        if self._pool is None:
            return
        try:
            if self._flushing is not None:
                await asyncio.wait({self._flushing}, timeout=1.0)
            await self.flush()
            lost = len(self._pending_stats) + len(self._pending_unanswered)
            if lost:
                log.warning("%d counter(s) and unanswered question(s) could not be written and are lost", lost)
        except (*PG_ERRORS, StoreUnavailable) as exc:
            log.error("could not write the last counters to the %s: %s", self.describe(), exc)
        finally:
            await self._abandon()

    async def __aenter__(self) -> Any:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _migrate(self) -> None:
        known = migrations("postgres")
        newest = known[-1][0] if known else 0
        async with self._pool_conn() as con:
            await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)  # several processes starting at once
            try:
                await con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                current = await con.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                if current > newest:
                    raise SchemaTooNew(current, newest)
                for version, sql in known:
                    if version <= current:
                        continue
                    log.info("applying database migration %04d", version)
                    async with con.transaction():
                        await con.execute(sql)
                        await con.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def schema_version(self) -> int:
        async with self._conn() as con:
            return int(await con.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def ping(self) -> None:
        """One round trip to the database (the operations endpoint's health check); raises StoreUnavailable."""
        async with self._pool_conn() as con:
            await con.fetchval("SELECT 1")

    # ----------------------------------------------------------------- where statements run
    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def _pool_conn(self) -> AsyncIterator[Any]:
        try:
            con = await self.pool.acquire(timeout=ACQUIRE_SECONDS)
        except TimeoutError:
            raise StoreUnavailable(f"no free database connection within {ACQUIRE_SECONDS:g} s") from None
        try:
            yield con
        finally:
            await self.pool.release(con)

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """The connection of the current task's turn (inside ``serialized``), else one from the pool."""
        turn = self._turn.get()
        if turn is not None and turn.task is asyncio.current_task():
            return contextlib.nullcontext(turn.con)
        return self._pool_conn()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A transaction of its own, or a savepoint inside the task's turn."""
        async with self._conn() as con, con.transaction():
            yield con

    @contextlib.asynccontextmanager
    async def serialized(self, platform: str, platform_user_id: str) -> AsyncIterator[None]:
        """One user's turn: every statement of the task runs in one transaction holding the user's advisory lock
        (``pg_advisory_xact_lock``), so another process handling the same user's next message waits until this one
        committed. Nested turns of the same task share it; tasks it starts use the pool. At most ``pool_size -
        RESERVED`` turns run at once (the rest wait without holding a connection)."""
        if self._turn.get() is not None and self._turn.get().task is asyncio.current_task():  # type: ignore[union-attr]
            yield
            return
        try:
            async with self._turns, self._pool_conn() as con, con.transaction():
                await con.execute("SELECT pg_advisory_xact_lock($1)", user_lock_key(platform, platform_user_id))
                token = self._turn.set(_Turn(con, asyncio.current_task()))
                try:
                    yield
                finally:
                    self._turn.reset(token)
        except PG_ERRORS as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    if TYPE_CHECKING:

        async def flush(self) -> None: ...


def describe_pg_error(where: str, exc: BaseException) -> str:
    """One line naming the database (no password), what is wrong and what to do."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return f"database {where} refused the login: check the user in database.url and {PASSWORD_ENV}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"database {where} does not exist: create it (createdb) or fix database.url"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"database {where}: the user may not create tables there ({text}); grant it or use another user"
    if isinstance(exc, TimeoutError):
        return f"database {where} did not answer within {CONNECT_SECONDS:g} s: check the host and port in database.url"
    if isinstance(exc, OSError):
        return f"database {where} cannot be reached ({text}): is PostgreSQL running there?"
    return f"database {where} cannot be used ({text})"
