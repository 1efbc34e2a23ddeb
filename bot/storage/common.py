"""What both stores share: the time format, the migrations of each dialect, and turning driver errors into the
core's ``StoreUnavailable``."""

from __future__ import annotations

import functools
import inspect
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

from bot.core.store import StoreUnavailable

#: UTC text that sorts in time order (SQLite's columns; both stores' /mydata export)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

C = TypeVar("C", bound=type)
#: the tables that hold health data about a user (deleted on withdrawal; /forget deletes the user row too)
HEALTH_TABLES = ("triage_state", "followups", "escalations", "unanswered")


def to_db(when: datetime) -> str:
    """UTC text that sorts in time order."""
    if when.tzinfo is None:
        raise TypeError("naive datetime: the store only takes timezone-aware times")
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def from_db(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def answers_to(answers: tuple[tuple[str, int], ...]) -> str:
    return json.dumps([list(a) for a in answers])


def answers_from(text: str) -> tuple[tuple[str, int], ...]:
    try:
        return tuple((str(a[0]), int(a[1])) for a in json.loads(text))
    except (ValueError, TypeError, IndexError, KeyError):
        return ()


UPDATABLE = frozenset({"state", "due_at", "checkins", "same_count", "attempts", "last_error"})
RELEASABLE = frozenset({"state", "due_at", "attempts", "last_error"})


def owner_gone(owner: str) -> bool:
    """Whether the process named by a ``host:pid:nonce`` owner is gone (only knowable on the same host)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: wait for the lease to expire
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (owned by someone else)
    return False


def checked_fields(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    if not fields or not set(fields) <= allowed:
        raise TypeError(f"cannot set {sorted(set(fields) - allowed)}")


class SchemaTooNew(Exception):
    """The database was written by a newer runbot: its schema version is above every migration this code ships."""

    def __init__(self, found: int, newest: int) -> None:
        super().__init__(f"schema version {found}, newer than {newest}")
        self.found = found
        self.newest = newest


def migrations(dialect: str) -> list[tuple[int, str]]:
    """``(version, sql)`` of ``bot/storage/migrations/<dialect>/NNNN_name.sql``, in order. Both dialects ship the same
    numbers, and version N means the same tables and columns in both (tests/storage/test_schema.py checks it)."""
    folder = resources.files("bot.storage") / "migrations" / dialect
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), item.read_text(encoding="utf-8")))
    return sorted(found)


def translate_errors(errors: tuple[type[BaseException], ...]) -> Callable[[C], C]:
    """Class decorator: every public coroutine method raises ``StoreUnavailable`` in place of ``errors`` (the
    driver's), so the core catches one error whichever store it runs on."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except StoreUnavailable:
                raise
            except errors as exc:
                raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

        return guarded

    def decorate(cls: C) -> C:
        for klass in cls.__mro__:
            for name, member in vars(klass).items():
                if name.startswith("_") or name in ("open",) or not inspect.iscoroutinefunction(member):
                    continue
                if name not in vars(cls) or vars(cls)[name] is member:
                    setattr(cls, name, wrap(member))
        return cls

    return decorate
