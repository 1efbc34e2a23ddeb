"""An in-memory Store (the port in bot/core/store.py) for the fast unit tier: the engine, commands, consent and
follow-ups run against it without a database file. The SQLite and PostgreSQL stores have their own integration
tests (tests/storage); this fake keeps to the same contract (tests/core/test_memory_store.py checks the method set)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.store import (
    ACTIVE_FOLLOWUP_STATES,
    FINISHED_FOLLOWUP_STATES,
    Claim,
    ConsentRecord,
    Followup,
    StoredTriage,
    StoreUnavailable,
    User,
)

HEALTH = ("triage_state", "followups", "escalations", "unanswered")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MemoryStore:
    """Everything in dicts; ``down = True`` makes every call raise StoreUnavailable (a storage outage)."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock
        self.on_problem: Callable[[str], Awaitable[None]] | None = None
        self.path = ":memory:"
        self.down = False
        self._ids = 0
        self._users: dict[int, User] = {}
        self._triage: dict[int, tuple[StoredTriage, datetime]] = {}
        self._consents: dict[int, ConsentRecord] = {}
        self._escalations: list[tuple[int | None, str, str, datetime]] = []
        self._unanswered: dict[tuple[str, int | None], dict[str, Any]] = {}
        self._counters: Counter[tuple[str, str]] = Counter()
        self._followups: dict[int, Followup] = {}
        self._claims: dict[int, tuple[str, datetime]] = {}
        self._sent: dict[str, datetime] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the memory store is down (test)")

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        self._check()

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> MemoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def serialized(self, platform: str, platform_user_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault((platform, platform_user_id), asyncio.Lock())
        async with lock:
            yield

    # ------------------------------------------------------------------ users
    async def find_user(self, platform: str, platform_user_id: str) -> User | None:
        self._check()
        key = (platform, platform_user_id)
        return next((u for u in self._users.values() if (u.platform, u.platform_user_id) == key), None)

    async def get_or_create_user(self, platform: str, platform_user_id: str) -> User:
        known = await self.find_user(platform, platform_user_id)
        if known is not None:
            return known
        user = User(self._next_id(), platform, platform_user_id, self._now(), notice_shown=False,
                    followups_enabled=True)
        self._users[user.id] = user
        return dataclasses.replace(user, new=True)

    async def user_by_id(self, user_id: int) -> User | None:
        self._check()
        return self._users.get(user_id)

    async def set_notice_shown(self, user: User) -> None:
        self._check()
        if user.id in self._users:
            self._users[user.id] = dataclasses.replace(self._users[user.id], notice_shown=True)

    async def set_followups_enabled(self, user: User, enabled: bool) -> None:
        self._check()
        if user.id in self._users:
            self._users[user.id] = dataclasses.replace(self._users[user.id], followups_enabled=enabled)

    async def export_user(self, user: User) -> dict[str, Any]:
        self._check()
        fresh = self._users.get(user.id, user)
        triage = self._triage.get(fresh.id)
        record = self._consents.get(fresh.id)
        return {
            "user": {"platform": fresh.platform, "platform_user_id": fresh.platform_user_id,
                     "first_seen": _iso(fresh.created_at), "notice_shown": fresh.notice_shown,
                     "followups_enabled": fresh.followups_enabled},
            "triage": None if triage is None else {**dataclasses.asdict(triage[0]),
                                                   "answers": [list(a) for a in triage[0].answers],
                                                   "updated_at": _iso(triage[1])},
            "escalations": [{"level": lv, "category": c, "created_at": _iso(t)}
                            for uid, lv, c, t in self._escalations if uid == fresh.id],
            "followups": [{k: v for k, v in dataclasses.asdict(f).items() if k not in ("id", "user_id")}
                          | {"due_at": _iso(f.due_at)} for f in self._followups.values() if f.user_id == fresh.id],
            "unanswered": [{"question": text, "count": row["count"], "first_seen": _iso(row["first_seen"]),
                            "last_seen": _iso(row["last_seen"])}
                           for (text, uid), row in self._unanswered.items() if uid == fresh.id],
            "consent": None if record is None else {"version": record.version, "text_sha256": record.text_hash,
                                                    "given_at": _iso(record.given_at)},
        }

    async def forget_user(self, user: User) -> None:
        await self.withdraw_consent(user)
        self._users.pop(user.id, None)

    # ------------------------------------------------------------------ triage
    async def get_triage(self, user: User) -> StoredTriage | None:
        self._check()
        held = self._triage.get(user.id)
        return held[0] if held else None

    async def conversation(self, user: User) -> tuple[StoredTriage | None, int | None]:
        awaiting = [f.id for f in self._followups.values() if f.user_id == user.id and f.state == "awaiting"]
        return await self.get_triage(user), max(awaiting) if awaiting else None

    async def save_triage(self, user: User, state: StoredTriage) -> None:
        self._check()
        self._triage[user.id] = (state, self._now())

    async def clear_triage(self, user: User) -> bool:
        self._check()
        return self._triage.pop(user.id, None) is not None

    # ------------------------------------------------------------------ consent
    async def consent_of(self, user: User) -> ConsentRecord | None:
        self._check()
        return self._consents.get(user.id) if user.stored else None

    async def give_consent(self, user: User, version: str, text_hash: str) -> None:
        self._check()
        self._consents[user.id] = ConsentRecord(version, text_hash, self._now())

    async def withdraw_consent(self, user: User) -> dict[str, int]:
        self._check()
        removed = {
            "triage_state": int(self._triage.pop(user.id, None) is not None),
            "followups": len([self._followups.pop(i) for i, f in list(self._followups.items())
                              if f.user_id == user.id]),
            "escalations": len([e for e in self._escalations if e[0] == user.id]),
            "unanswered": len([k for k in self._unanswered if k[1] == user.id]),
            "consents": int(self._consents.pop(user.id, None) is not None),
        }
        self._escalations = [e for e in self._escalations if e[0] != user.id]
        self._unanswered = {k: v for k, v in self._unanswered.items() if k[1] != user.id}
        return removed

    # ------------------------------------------------------------------ safety log, questions, counters
    async def log_escalation(self, user: User | None, level: str, category: str) -> None:
        self._check()
        self._escalations.append((user.id if user is not None and user.stored else None, level, category,
                                  self._now()))

    async def record_unanswered(self, normalized: str, user_id: int | None = None) -> None:
        self._check()
        now = self._now()
        row = self._unanswered.setdefault((normalized, user_id or None), {"count": 0, "first_seen": now})
        row["count"] += 1
        row["last_seen"] = now

    async def increment(self, kind: str, n: int = 1) -> None:
        self._counters[(self._now().date().isoformat(), kind)] += n

    async def flush(self) -> None:
        self._check()

    async def unanswered(self, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self._check()
        merged: dict[str, dict[str, Any]] = {}
        for (text, _), row in self._unanswered.items():
            if since is not None and row["last_seen"] < since:
                continue
            into = merged.setdefault(text, {"text": text, "count": 0, "last_seen": row["last_seen"]})
            into["count"] += row["count"]
            into["last_seen"] = max(into["last_seen"], row["last_seen"])
        return sorted(merged.values(), key=lambda r: -r["count"])[:limit]

    async def stats(self, since: datetime | None = None) -> dict[str, int]:
        self._check()
        out: Counter[str] = Counter()
        for (day, kind), n in self._counters.items():
            if since is None or day >= since.date().isoformat():
                out[kind] += n
        return dict(out)

    # ------------------------------------------------------------------ retention
    async def purge_older_than(self, days: int) -> int:
        cutoff = self._now() - timedelta(days=days)
        before = len(self._escalations) + len(self._unanswered)
        self._escalations = [e for e in self._escalations if e[3] >= cutoff]
        self._unanswered = {k: v for k, v in self._unanswered.items() if v["last_seen"] >= cutoff}
        return before - len(self._escalations) - len(self._unanswered)

    async def purge_health(self, *, triage_days: int) -> int:
        cutoff = self._now() - timedelta(days=triage_days)
        old = [uid for uid, (_, updated) in self._triage.items() if updated < cutoff]
        done = [i for i, f in self._followups.items() if f.state in FINISHED_FOLLOWUP_STATES]
        for uid in old:
            del self._triage[uid]
        for i in done:
            del self._followups[i]
        return len(old) + len(done)

    async def purge_sent_keys(self, before: datetime) -> int:
        old = [k for k, t in self._sent.items() if t < before]
        for k in old:
            del self._sent[k]
        return len(old)

    # ------------------------------------------------------------------ follow-ups
    async def add_followup(self, user: User, chat_id: str, topic: str, due: datetime) -> int:
        self._check()
        fid = self._next_id()
        self._followups[fid] = Followup(fid, user.id, user.platform, user.platform_user_id, chat_id, topic, due,
                                        checkins=0, same_count=0, attempts=0, state="pending", last_error=None)
        return fid

    async def get_followup(self, followup_id: int) -> Followup | None:
        self._check()
        return self._followups.get(followup_id)

    async def user_followups(self, user: User, *, active_only: bool = False) -> list[Followup]:
        self._check()
        return [f for f in self._followups.values()
                if f.user_id == user.id and (not active_only or f.state in ACTIVE_FOLLOWUP_STATES)]

    async def list_followups(self, states: tuple[str, ...] = ACTIVE_FOLLOWUP_STATES) -> list[Followup]:
        self._check()
        return sorted((f for f in self._followups.values() if f.state in states), key=lambda f: f.due_at)

    async def update_followup(self, followup_id: int, *, expect_state: str | None = None, **fields: Any) -> bool:
        self._check()
        f = self._followups.get(followup_id)
        if f is None or (expect_state is not None and f.state != expect_state):
            return False
        self._followups[followup_id] = dataclasses.replace(f, **fields)
        return True

    async def cancel_followups(self, user: User) -> int:
        self._check()
        active = [f for f in self._followups.values() if f.user_id == user.id and f.state in ACTIVE_FOLLOWUP_STATES]
        for f in active:
            self._followups[f.id] = dataclasses.replace(f, state="cancelled")
        return len(active)

    # ------------------------------------------------------------------ claims (exactly-once sending)
    async def claim_due(
        self, owner: str, now: datetime, lease: timedelta, *, platforms: set[str], limit: int = 20
    ) -> list[Claim]:
        self._check()
        claimable = [f for f in await self.list_followups(("pending", "sending"))
                     if f.platform in platforms and f.due_at <= now
                     and (f.state == "pending" or self._claims.get(f.id, ("", now))[1] <= now)][:limit]
        out = []
        for f in claimable:
            claimed = dataclasses.replace(f, state="sending")
            self._followups[f.id] = claimed
            self._claims[f.id] = (owner, now + lease)
            out.append(Claim(claimed, f"fu:{f.id}:{f.checkins + 1}"))
        return out

    async def claim_held(self, claim: Claim, owner: str) -> bool:
        f = self._followups.get(claim.followup.id)
        return f is not None and f.state == "sending" and self._claims.get(f.id, ("",))[0] == owner

    async def already_sent(self, send_key: str) -> bool:
        return send_key in self._sent

    async def complete_claim(self, claim: Claim, owner: str, now: datetime) -> bool:
        if not await self.claim_held(claim, owner):
            return False
        f = self._followups[claim.followup.id]
        self._sent[claim.send_key] = now
        self._followups[f.id] = dataclasses.replace(f, state="awaiting", checkins=f.checkins + 1, attempts=0)
        self._claims.pop(f.id, None)
        return True

    async def release_claim(self, claim: Claim, owner: str, now: datetime, **fields: Any) -> bool:
        if not await self.claim_held(claim, owner):
            return False
        f = self._followups[claim.followup.id]
        self._followups[f.id] = dataclasses.replace(f, **fields)
        self._claims.pop(f.id, None)
        return True

    async def next_claimable(self, platforms: set[str]) -> datetime | None:
        due = [f.due_at for f in self._followups.values() if f.state == "pending" and f.platform in platforms]
        return min(due) if due else None
