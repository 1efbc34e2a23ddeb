"""PostgreSQL for tests: a freshly created database with a random name, dropped afterwards, so parallel runs never
share one; skipped with a one-line reason when no server answers at 127.0.0.1:5432 (or RUNBOT_TEST_POSTGRES)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

T = TypeVar("T")

#: the server's maintenance database; tests create and drop their own databases next to it (trust auth)
ADMIN_URL = os.environ.get("RUNBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

_reason: str | None = None
_checked = False


def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can). Checked once per test run."""
    global _reason, _checked
    if _checked:
        return _reason
    _checked = True
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        _reason = "PostgreSQL tests need asyncpg (pip install -e '.[dev]')"
        return _reason
    parts = urlsplit(ADMIN_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        with socket.create_connection((host, port), timeout=1.0):
            pass
    except OSError as exc:
        _reason = f"no PostgreSQL server at {host}:{port} ({exc.strerror or exc})"
    return _reason


def skip_without_postgres() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


def _url_for(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


async def _admin(sql: str) -> None:
    import asyncpg

    con = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await con.execute(sql)
    finally:
        await con.close()


async def create_database() -> str:
    """A new empty database; its url."""
    name = f"runbot_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return _url_for(name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith("runbot_test_"), name  # never anything else
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end on a loop of its own in another thread (a fixture may be set up from inside a
    running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@contextmanager
def fresh_database() -> Iterator[str]:
    """For a synchronous (e.g. module-scoped) fixture: create a database, yield its url, drop it."""
    skip_without_postgres()
    url = run(create_database)
    try:
        yield url
    finally:
        run(lambda: drop_database(url))


async def empty_tables(url: str) -> None:
    """Empty every table the migrations create and restart their ids, between tests that share one database. DELETE,
    not TRUNCATE: on tables this small TRUNCATE (new files for every table and index) took 60 ms, DELETE 8 ms."""
    import asyncpg

    con = await asyncpg.connect(url, timeout=5)
    try:
        tables = [r[0] for r in await con.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )]
        sequences = [r[0] for r in await con.fetch(
            "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"
        )]
        # one transaction; users' rows cascade to theirs, faq_changes' references are to its own rows
        await con.execute("BEGIN; " + "".join(f'DELETE FROM "{t}"; ' for t in tables)
                          + "".join(f"SELECT setval('{s}', 1, false); " for s in sequences) + "COMMIT;")
    finally:
        await con.close()
