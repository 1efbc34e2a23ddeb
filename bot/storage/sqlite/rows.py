"""Reading rows in one trip to the SQLite connection's thread.

aiosqlite runs every call on the connection's own thread; a cursor costs three trips there and back (execute,
fetch, close), and for a new user's message those trips were a third of the time the message took."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
    """The first row of a query, or None."""
    rows = await db.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Every row of a query."""
    return list(await db.execute_fetchall(sql, params))
