"""The Store port: what the core needs from a database, the records it gets back, and the one error it catches.

Two implementations live in ``bot.storage``: SQLite (aiosqlite, the default: one process, one file) and PostgreSQL
(asyncpg: many processes on one database). The core sees only this module: a failing, locked, full or unreachable
database raises ``StoreUnavailable`` from either, and nothing under ``bot/core`` imports a concrete store.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

__all__ = [
    "ACTIVE_FOLLOWUP_STATES", "FINISHED_FOLLOWUP_STATES", "STORE_ERRORS", "Claim", "ConsentRecord", "Followup",
    "FollowupState", "Inbox", "InboxUnavailable", "Store", "StoreUnavailable", "StoredTriage", "User", "new_owner",
]


class StoreUnavailable(Exception):
    """The database cannot be used right now (locked, full, gone, unreachable, closed): a storage problem, not a bug.
    Both stores raise it in place of their driver's errors; the message never holds a password."""


class InboxUnavailable(StoreUnavailable):
    """The durable inbox could not be read or written."""


#: what the core catches as "storage is down": the store's own error, and a wait for it that ran out of time
STORE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, TimeoutError)

#: pending: waiting for due_at; sending: claimed by a scheduler (lease); awaiting: sent, waiting for the answer;
#: done, cancelled, failed, dropped: finished (deleted by the retention round)
FollowupState = Literal["pending", "sending", "awaiting", "done", "cancelled", "failed", "dropped"]
ACTIVE_FOLLOWUP_STATES: tuple[FollowupState, ...] = ("pending", "sending", "awaiting")
FINISHED_FOLLOWUP_STATES: tuple[FollowupState, ...] = ("done", "cancelled", "failed", "dropped")


@dataclass(frozen=True, slots=True)
class User:
    """A runner on one platform. ``id`` 0: no row (nothing stored about them yet, or storage is down)."""

    id: int
    platform: str
    platform_user_id: str
    created_at: datetime
    notice_shown: bool
    followups_enabled: bool
    #: created by this very call (nothing else can be stored about the user yet); not a column
    new: bool = field(default=False, compare=False)

    @property
    def stored(self) -> bool:
        return self.id != 0


@dataclass(frozen=True, slots=True)
class StoredTriage:
    """A user's position in the triage flow."""

    flow_id: str
    step_id: str
    answers: tuple[tuple[str, int], ...]
    chat_id: str


@dataclass(frozen=True, slots=True)
class Followup:
    """One check-in series for one user."""

    id: int
    user_id: int
    platform: str
    platform_user_id: str
    chat_id: str
    topic: str
    due_at: datetime
    checkins: int
    same_count: int
    attempts: int
    state: FollowupState
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Claim:
    """A due check-in held by one scheduler until its lease ends; ``send_key`` names this one send."""

    followup: Followup
    send_key: str


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One user's stored "Yes, I agree": the consent text's version and SHA-256, and when it was given."""

    version: str
    text_hash: str
    given_at: datetime


def new_owner() -> str:
    """``host:pid:nonce``: unique per scheduler, and tells a process on the same host whether the owner is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Store(Protocol):
    """Per-user state, the safety log, unanswered questions, counters and follow-ups, for one or many processes."""

    #: called with a one-line problem report (e.g. the database file vanished); set by the composition root
    on_problem: Callable[[str], Awaitable[None]] | None

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        """Connect and migrate; a database that cannot be used raises a StartupError with one line."""

    async def close(self) -> None: ...

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def serialized(self, platform: str, platform_user_id: str) -> AbstractAsyncContextManager[None]:
        """One user's conversation state is read and written by one message at a time, across processes."""
        ...

    # ------------------------------------------------------------------ users
    async def find_user(self, platform: str, platform_user_id: str) -> User | None: ...

    async def get_or_create_user(self, platform: str, platform_user_id: str) -> User:
        """The user's row, created when something about them must be stored."""
        ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def set_notice_shown(self, user: User) -> None: ...

    async def set_followups_enabled(self, user: User, enabled: bool) -> None: ...

    async def export_user(self, user: User) -> dict[str, Any]:
        """Everything stored about the user (their row, check, consent, safety log, check-ins, questions)."""
        ...

    async def forget_user(self, user: User) -> None:
        """Delete every row about the user."""
        ...

    # ------------------------------------------------------------------ triage
    async def get_triage(self, user: User) -> StoredTriage | None: ...

    async def conversation(self, user: User) -> tuple[StoredTriage | None, int | None]:
        """The user's triage position and the id of a check-in awaiting their answer."""
        ...

    async def save_triage(self, user: User, state: StoredTriage) -> None: ...

    async def clear_triage(self, user: User) -> bool: ...

    # ------------------------------------------------------------------ consent
    async def consent_of(self, user: User) -> ConsentRecord | None: ...

    async def give_consent(self, user: User, version: str, text_hash: str) -> None: ...

    async def withdraw_consent(self, user: User) -> dict[str, int]:
        """Delete the consent and every health row of the user; how many rows went from each table."""
        ...

    # ------------------------------------------------------------------ safety log, questions, counters
    async def log_escalation(self, user: User | None, level: str, category: str) -> None:
        """Level, category and time; linked to ``user`` (None: to nobody). Never the message."""
        ...

    async def record_unanswered(self, normalized: str, user_id: int | None = None) -> None: ...

    async def increment(self, kind: str, n: int = 1) -> None:
        """Bump today's counter ``kind`` (buffered: never makes a reply wait)."""
        ...

    async def flush(self) -> None: ...

    async def unanswered(self, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]: ...

    async def stats(self, since: datetime | None = None) -> dict[str, int]: ...

    # ------------------------------------------------------------------ retention
    async def purge_older_than(self, days: int) -> int: ...

    async def purge_health(self, *, triage_days: int) -> int: ...

    async def purge_sent_keys(self, before: datetime) -> int: ...

    # ------------------------------------------------------------------ follow-ups
    async def add_followup(self, user: User, chat_id: str, topic: str, due: datetime) -> int: ...

    async def get_followup(self, followup_id: int) -> Followup | None: ...

    async def user_followups(self, user: User, *, active_only: bool = False) -> list[Followup]: ...

    async def list_followups(self, states: tuple[str, ...] = ACTIVE_FOLLOWUP_STATES) -> list[Followup]: ...

    async def update_followup(self, followup_id: int, *, expect_state: str | None = None, **fields: Any) -> bool: ...

    async def cancel_followups(self, user: User) -> int: ...

    # ------------------------------------------------------------------ claims (exactly-once sending)
    async def claim_due(
        self, owner: str, now: datetime, lease: timedelta, *, platforms: set[str], limit: int = 20
    ) -> list[Claim]: ...

    async def claim_held(self, claim: Claim, owner: str) -> bool: ...

    async def already_sent(self, send_key: str) -> bool: ...

    async def complete_claim(self, claim: Claim, owner: str, now: datetime) -> bool: ...

    async def release_claim(self, claim: Claim, owner: str, now: datetime, **fields: Any) -> bool: ...

    async def next_claimable(self, platforms: set[str]) -> datetime | None: ...


class Inbox(Protocol):
    """The durable inbox of one platform: updates stored before the platform is told it may forget them."""

    platform: str

    @property
    def durable(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, updates: Sequence[tuple[int, str, dict[str, Any]]]) -> set[int]: ...

    async def pending(self) -> list[tuple[int, dict[str, Any]]]: ...

    async def last_id(self) -> int | None: ...

    def done(self, update_id: int) -> None: ...

    async def flush(self) -> None: ...

    async def count(self, state: str) -> int: ...


class ChatQueue(Protocol):
    """The shared side of an inbox (``telegram.inbox: shared``): each chat held by one process at a time (a lease),
    its updates read in order; and named single-holder leases (the one getUpdates poller of a bot)."""

    inbox: Inbox
    owner: str
    lease: timedelta

    async def open(self) -> None: ...

    async def claim(self, limit: int, busy: Sequence[str] = ()) -> list[str]: ...

    async def updates(self, chat_key: str, limit: int = 20) -> list[tuple[int, dict[str, Any]]]: ...

    async def renew(self, chat_keys: Sequence[str]) -> set[str]: ...

    async def release(self, chat_key: str) -> None: ...

    async def release_all(self) -> None: ...

    async def hold(self, name: str) -> bool: ...

    async def let_go(self, name: str) -> None: ...
