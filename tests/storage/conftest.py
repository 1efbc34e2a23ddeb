"""Stores for the contract tests: every test that takes ``any_store`` runs on SQLite (a new file in tmp_path) and on
PostgreSQL (a database created for this test module and dropped after it; skipped with one line without a server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pgtest
import pytest
from support import new_database

from bot.core.ports import ManualClock
from bot.storage import make_store


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pgtest.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where this test's stores live: a fresh SQLite file, or the module's PostgreSQL database emptied."""
    if backend == "sqlite":
        return str(tmp_path / "runbot.db")
    url = str(request.getfixturevalue("pg_url"))
    await pgtest.empty_tables(url)
    return url


@pytest.fixture
async def open_store(location: str, clock: ManualClock) -> AsyncIterator[Callable[[], Any]]:
    """Opens more stores on the same database (each one = another process), all closed at the end. A new SQLite file
    starts migrated (``support.new_database``)."""
    opened: list[Any] = []
    if not location.startswith("postgresql:"):
        await asyncio.to_thread(new_database, Path(location))

    async def another() -> Any:
        store = make_store(location, clock=clock)
        await store.open()
        opened.append(store)
        return store

    yield another
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def any_store(open_store: Callable[[], Any]) -> Any:
    return await open_store()
