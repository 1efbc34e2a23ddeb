"""database.url in the config: sqlite:/// (the default) or postgresql://, the password only from the environment,
mistakes reported as FILE:LINE: message without repeating a password; database.path still names a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.storage import make_store
from bot.storage.postgres import PostgresStore, safe_url
from bot.storage.sqlite import SQLiteStore


def _load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    return load_settings(config)


def test_the_default_is_a_sqlite_file_and_path_still_names_one(tmp_path: Path) -> None:
    assert (Settings().database.url, Settings().database.path) == ("sqlite:///runbot.db", "runbot.db")
    old = _load(tmp_path, "database:\n  path: /data/runbot.db\n").database
    assert (old.url, old.path, old.postgres) == ("sqlite:////data/runbot.db", "/data/runbot.db", False)
    new = _load(tmp_path, "database:\n  url: sqlite:///var/run.db\n").database
    assert (new.url, new.path) == ("sqlite:///var/run.db", "var/run.db")
    assert isinstance(make_store(new.url), SQLiteStore) and make_store(new.url).path == "var/run.db"  # type: ignore[attr-defined]


def test_a_postgresql_url_makes_the_postgresql_store(tmp_path: Path) -> None:
    db = _load(tmp_path, "database:\n  url: postgresql://runbot@db.example.org:5432/runbot\n").database
    assert db.postgres and db.path == ""
    assert isinstance(make_store(db.url), PostgresStore)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://runbot:hunter2@db/runbot", "the password does not belong in the file"),
        ("mysql://runbot@db/runbot", "must start with sqlite:/// or postgresql://"),
        ("postgresql://runbot@db:99999/runbot", "the port must be a number"),
        ("postgresql://runbot@db", "name the database"),
        ("sqlite://", "a SQLite url names the file"),
    ],
)
def test_a_wrong_url_is_one_line_with_its_line_and_never_the_password(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"knowledge:\n  watch: false\ndatabase:\n  url: {url}\n")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'config.yaml'}:4: database.url: ") and says in message, message
    assert "hunter2" not in message and "\n" not in message


def test_url_and_path_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: database: set url or path, not both"):
        _load(tmp_path, "database:\n  url: sqlite:///a.db\n  path: b.db\n")


def test_the_password_comes_from_the_environment_and_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOT_DATABASE_PASSWORD", "s3cret-pw")
    store = make_store("postgresql://runbot@127.0.0.1:5999/runbot")
    assert store._password == "s3cret-pw"  # type: ignore[attr-defined]
    assert "s3cret" not in store.describe()  # type: ignore[attr-defined]
    assert safe_url("postgresql://runbot:pw@h:5432/db?sslmode=require") == "postgresql://runbot@h:5432/db"


async def test_an_unreachable_database_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core.ports import StartupError

    monkeypatch.setenv("RUNBOT_DATABASE_PASSWORD", "s3cret-pw")
    store = make_store("postgresql://runbot@127.0.0.1:5999/runbot")  # nothing listens there
    with pytest.raises(StartupError) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith("database postgresql://runbot@127.0.0.1:5999/runbot cannot be reached"), message
    assert "\n" not in message and "s3cret" not in message


def test_the_pool_size_reaches_the_postgresql_store_and_is_checked(tmp_path: Path) -> None:
    from support import build_shipped

    settings = _load(tmp_path, "database:\n  url: postgresql://runbot@127.0.0.1:5999/runbot\n  pool_size: 3\n")
    runtime = build_shipped(settings)  # not opened: nothing needs to listen there
    assert runtime.store._pool_size == 3  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"config.yaml:3: database.pool_size: must be at most 200, got 500"):
        _load(tmp_path, "database:\n  url: postgresql://runbot@db/runbot\n  pool_size: 500\n")
