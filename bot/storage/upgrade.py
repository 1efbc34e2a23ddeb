"""``runbot db upgrade``: bring a database's schema up to this version of runbot (runbot run does the same at start)."""

from __future__ import annotations

from pathlib import Path

from bot.storage import make_store


async def upgrade(location: str | Path) -> str:
    """Open (migrating) and close the database; one line saying where it stands. Raises StartupError (one line) for
    a database that cannot be used or has a newer schema than this code."""
    store = make_store(location)
    async with store:
        version = await store.schema_version()  # type: ignore[attr-defined]
        where = store.describe()  # type: ignore[attr-defined]
    return f"{where}: schema version {version} (up to date)"
