"""Both dialects' migrations reach the same schema at every version, `runbot db upgrade` brings a database up to date,
and a database with a newer schema than the code is refused with one line (exit 1)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pgtest
import pytest
from support import ROOT

from bot.storage.common import migrations

#: PostgreSQL's column types and the SQLite type each stands for (times are sortable UTC text on SQLite)
PG_TO_SQLITE = {
    "bigint": "INTEGER", "integer": "INTEGER", "boolean": "INTEGER", "text": "TEXT",
    "timestamp with time zone": "TEXT", "bytea": "BLOB", "double precision": "REAL",
}
#: the migration runner's own bookkeeping (SQLite keeps it in PRAGMA user_version)
RUNNER_TABLES = {"schema_migrations"}

Schema = dict[str, Any]


def sqlite_schemas(db: Path) -> dict[int, Schema]:
    """The SQLite schema after each version, its migrations applied one version at a time to one file."""
    conn = sqlite3.connect(db)
    out: dict[int, Schema] = {}
    try:
        for version, sql in migrations("sqlite"):
            conn.executescript(f"BEGIN;\n{sql}\nCOMMIT;")
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            columns = {
                t: {name: (kind.upper(), bool(notnull) or pk > 0, pk > 0)
                    for _, name, kind, notnull, _, pk in conn.execute(f"PRAGMA table_info({t})")}
                for t in tables
            }
            indexes = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
            out[version] = {"columns": columns, "indexes": indexes}
    finally:
        conn.close()
    return out


async def postgres_schemas(url: str) -> dict[int, Schema]:
    """The PostgreSQL schema after each version, its migrations applied one version at a time to one database."""
    import asyncpg

    out: dict[int, Schema] = {}
    con = await asyncpg.connect(url)
    try:
        for version, sql in migrations("postgres"):
            async with con.transaction():
                await con.execute(sql)
            rows = await con.fetch(
                "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,"
                " EXISTS (SELECT 1 FROM information_schema.table_constraints tc"
                "  JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name"
                "  WHERE tc.table_name = c.table_name AND tc.constraint_type = 'PRIMARY KEY'"
                "  AND k.column_name = c.column_name) AS pk"
                " FROM information_schema.columns c WHERE c.table_schema = 'public'"
            )
            indexes = {r[0] for r in await con.fetch(
                "SELECT indexname FROM pg_indexes i WHERE schemaname = 'public'"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )}
            columns: dict[str, dict[str, tuple[str, bool, bool]]] = {}
            for r in rows:
                if r["table_name"] in RUNNER_TABLES:
                    continue
                kind = PG_TO_SQLITE.get(r["data_type"], f"unmapped {r['data_type']}")
                columns.setdefault(r["table_name"], {})[r["column_name"]] = (kind, r["is_nullable"] == "NO", r["pk"])
            out[version] = {"columns": columns, "indexes": indexes}
    finally:
        await con.close()
    return out


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Schema], dict[int, Schema]]:
    """Both dialects' schemas after each version (SQLite, PostgreSQL), migrated one version at a time, as an upgrade
    does; a database each for the module (one per version took 0.1 s a version)."""
    lite = sqlite_schemas(tmp_path_factory.mktemp("schema") / "schema.db")
    with pgtest.fresh_database() as url:
        return lite, pgtest.run(lambda: postgres_schemas(url))


def test_both_dialects_ship_the_same_versions() -> None:
    sqlite_versions = [v for v, _ in migrations("sqlite")]
    assert sqlite_versions == [v for v, _ in migrations("postgres")]
    assert sqlite_versions == list(range(1, len(sqlite_versions) + 1))


@pytest.mark.parametrize("version", [v for v, _ in migrations("sqlite")])
def test_both_dialects_reach_the_same_schema(
    version: int, schemas: tuple[dict[int, Schema], dict[int, Schema]]
) -> None:
    lite, pg = schemas[0][version], schemas[1][version]
    assert pg["columns"] == lite["columns"]  # tables, columns, mapped types, NOT NULL, primary keys
    assert pg["indexes"] == lite["indexes"]


# ---------------------------------------------------------------------------------------- the command
def _runbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)},
    )


async def _bump(location: str, version: int) -> None:
    if location.startswith("postgresql://"):
        import asyncpg

        con = await asyncpg.connect(location)
        try:
            await con.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        finally:
            await con.close()
    else:
        with sqlite3.connect(location) as conn:
            conn.execute(f"PRAGMA user_version = {version}")


async def test_db_upgrade_migrates_and_a_newer_schema_is_refused_with_one_line(location: str) -> None:
    newest = migrations("sqlite")[-1][0]
    done = _runbot("db", "upgrade", "--db", location)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"schema version {newest} (up to date)"), done.stdout
    await _bump(location, newest + 1)
    for args in (("db", "upgrade", "--db", location), ("followups", "list", "--db", location)):
        refused = _runbot(*args)
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr
        assert f"schema version {newest + 1}, made by a newer runbot" in lines[0], lines[0]
        assert "Traceback" not in refused.stderr
