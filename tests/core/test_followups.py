"""Issue 4: follow-up check-ins that survive restarts, and runners in control of their data.

Everything runs on a real SQLite file in tmp_path with the shipped knowledge; time moves with a ManualClock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support import build_shipped, button, press_agree

import bot.bootstrap
from bot.bootstrap import Runtime
from bot.config import RateLimitSettings, Settings
from bot.core.engine import Engine
from bot.core.messages import ChatRef, IncomingMessage, Outcome, Reply
from bot.core.payloads import CHECKIN_ANSWERS, checkin_answer, decode, faq, followup_offer, forget
from bot.core.ports import DeliveryError, ManualClock
from bot.core.store import Claim, Followup
from bot.storage.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
PLATFORM = "test"
#: flood control is real-time; a whole triage in a few milliseconds would trip it, so tests switch it off
SETTINGS = Settings(rate_limit=RateLimitSettings(enabled=False))
EMERGENCY_TEXT = "my back hurts and I've lost control of my bladder"


@functools.cache
def _cached_knowledge(path: str) -> object:
    return _real_load(Path(path))


_real_load = bot.bootstrap.load_knowledge


@pytest.fixture(autouse=True)
def _knowledge_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped knowledge is immutable; load it once per test session instead of once per restart."""
    monkeypatch.setattr(bot.bootstrap, "load_knowledge", lambda path, *a, **kw: _cached_knowledge(str(path)))


class RecordingAdapter:
    """An Adapter that records every delivery; can be told to fail (``fail`` = a DeliveryError to raise)."""

    def __init__(self, platform: str = PLATFORM) -> None:
        self.platform = platform
        self.sent: list[tuple[ChatRef, tuple[Reply, ...]]] = []
        self.attempts = 0
        self.fail: DeliveryError | None = None
        self.on_send: Callable[[ChatRef], Awaitable[None]] | None = None  # runs inside each send
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        self.attempts += 1
        if self.on_send is not None:
            await self.on_send(target)
        if self.fail is not None:
            raise self.fail
        self.sent.append((target, tuple(replies)))


def dm(user: str, text: str = "", *, choice: str | None = None) -> IncomingMessage:
    return IncomingMessage(PLATFORM, user, f"dm-{user}", text=text, choice=choice, is_private=True)


def all_choices(out: Outcome) -> dict[str, str]:
    return {c.label: c.payload for r in out.replies for c in r.choices}


def payloads(out: Outcome) -> list[str]:
    return [c.payload for r in out.replies for c in r.choices]


def text_of(out: Outcome) -> str:
    return "\n".join(r.text for r in out.replies)


#: the self-care-mild path through knowledge/triage.yaml: every red-flag question "No", then these answers
PREFERRED = ("Less than 6 weeks", "Sore after runs, fine in between", "None of these", "No")


async def run_triage(engine: Engine, user: str) -> Outcome:
    """/triage, then answer each step by pressing its button, until the flow ends; return the last outcome."""
    out = await press_agree(engine, await engine.handle(dm(user, "/triage")), dm(user))  # consent: yes
    assert out.kind == "triage"
    for _ in range(15):
        step = [r for r in out.replies if r.choices and any(button(c.payload, "tri") for c in r.choices)]
        if not step:
            return out
        labels = {c.label: c.payload for c in step[-1].choices}
        label = next(p for p in PREFERRED if p in labels)
        out = await engine.handle(dm(user, label, choice=labels[label]))
    raise AssertionError("triage did not end")


async def accept_followup(engine: Engine, user: str) -> Outcome:
    """Run the triage to self-care and press "Yes, check in"."""
    end = await run_triage(engine, user)
    offer = all_choices(end)
    assert offer.get("Yes, check in") == followup_offer("self-care-mild"), offer
    out = await engine.handle(dm(user, "Yes, check in", choice=offer["Yes, check in"]))
    assert out.kind == "followup"
    return out


def open_runtime(db: Path, clock: ManualClock, settings: Settings = SETTINGS) -> Runtime:
    return build_shipped(settings, clock=clock, db_path=db)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def rt(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Runtime]:
    runtime = open_runtime(tmp_path / "runbot.db", clock)
    async with runtime:
        runtime.add_adapter(RecordingAdapter())
        yield runtime


def adapter_of(runtime: Runtime) -> RecordingAdapter:
    adapter = runtime.adapters[PLATFORM]
    assert isinstance(adapter, RecordingAdapter)
    return adapter


async def only_followup(store: SQLiteStore, platform_user: str) -> Followup:
    user = await store.find_user(PLATFORM, platform_user)
    assert user is not None
    rows = await store.user_followups(user)
    assert len(rows) == 1, rows
    return rows[0]


async def deliver(runtime: Runtime, clock: ManualClock, days: float, user: str) -> int:
    """Move the clock, run the scheduler once, and return the id of the check-in the user just received."""
    adapter = adapter_of(runtime)
    before = len(adapter.sent)
    clock.advance(days=days)
    assert await runtime.scheduler.run_due() == 1
    assert len(adapter.sent) == before + 1
    target, replies = adapter.sent[-1]
    assert target == ChatRef(PLATFORM, user, f"dm-{user}")
    (reply,) = replies
    found = {p.args[0] for c in reply.choices if (p := decode(c.payload)) and p.kind == "fu" and p.args[0].isdigit()}
    assert len(found) == 1 and len(reply.choices) == 3
    return int(found.pop())


# ---------------------------------------------------------------------------------------------- 1. acceptance
async def test_acceptance_self_care_checkin_sent_once_across_restarts(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "runbot.db"
    adapter = RecordingAdapter()
    first = open_runtime(db, clock)
    async with first:
        first.add_adapter(adapter)
        end = await run_triage(first.engine, "runner-1")
        assert "common running strain" in text_of(end)  # the self-care-mild outcome
        offer = [r for r in end.replies if "check in" in r.text]
        assert len(offer) == 1 and "3 days" in offer[0].text
        out = await first.engine.handle(dm("runner-1", "Yes, check in", choice=followup_offer("self-care-mild")))
        assert "in 3 days" in text_of(out)
        stored = await only_followup(first.store, "runner-1")
        assert (stored.state, stored.topic, stored.chat_id, stored.checkins) == (
            "pending", "self-care-mild", "dm-runner-1", 0
        )
        assert stored.due_at == clock.now() + timedelta(days=3)
        assert await first.scheduler.run_due() == 0  # not due yet
    assert adapter.sent == []

    clock.advance(days=2)  # restart before the due time: nothing is sent, nothing lost
    async with open_runtime(db, clock) as second:
        second.add_adapter(adapter)
        assert await second.scheduler.run_due() == 0
        assert (await only_followup(second.store, "runner-1")).state == "pending"

    clock.advance(days=1, seconds=1)  # due now
    async with open_runtime(db, clock) as third:
        third.add_adapter(adapter)
        assert await third.scheduler.run_due() == 1
        assert await third.scheduler.run_due() == 0

    clock.advance(hours=1)  # restart after the due time: not sent again
    async with open_runtime(db, clock) as fourth:
        fourth.add_adapter(adapter)
        assert await fourth.scheduler.run_due() == 0
        stored = await only_followup(fourth.store, "runner-1")
        assert (stored.state, stored.checkins) == ("awaiting", 1)
        assert len(adapter.sent) == 1
        target, replies = adapter.sent[0]
        assert target == ChatRef(PLATFORM, "runner-1", "dm-runner-1")
        assert replies[0].text.startswith("Hi, it's runbot checking in")
        assert [c.payload for c in replies[0].choices] == [checkin_answer(stored.id, a) for a in CHECKIN_ANSWERS]
        # the new process understands the button sent by the old one
        out = await fourth.engine.handle(dm("runner-1", "Better", choice=checkin_answer(stored.id, "better")))
        assert out.kind == "followup"


async def test_accepting_wakes_the_scheduler(rt: Runtime) -> None:
    woken: list[int] = []
    rt.engine.waker = lambda: woken.append(1)
    await accept_followup(rt.engine, "runner-1")
    assert woken == [1]


# ---------------------------------------------------------------------------------------------- 2. answers
async def test_better_ends_the_series_with_prevention_links(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    fid = await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("r", "Better", choice=checkin_answer(fid, "better")))
    assert out.kind == "followup"
    assert {faq("prevention"), faq("core-exercises")} <= set(payloads(out))
    assert "not medical advice" in text_of(out)
    assert (await only_followup(rt.store, "r")).state == "done"
    clock.advance(days=60)
    assert await rt.scheduler.run_due() == 0
    assert await rt.store.next_due() is None
    # the same button again is stale
    again = await rt.engine.handle(dm("r", "Better", choice=checkin_answer(fid, "better")))
    assert again.kind == "expired"


async def test_same_twice_suggests_a_professional_and_series_stops_after_three(
    rt: Runtime, clock: ManualClock
) -> None:
    interval = rt.settings.followups.interval_days
    assert rt.settings.followups.max_checkins == 3
    await accept_followup(rt.engine, "r")

    fid = await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("r", "Same", choice=checkin_answer(fid, "same")))
    assert "physiotherapist" not in text_of(out) and "in 7 days" in text_of(out)
    f = await only_followup(rt.store, "r")
    assert (f.state, f.same_count, f.checkins, f.due_at) == ("pending", 1, 1, clock.now() + timedelta(days=interval))
    clock.advance(days=interval - 0.01)
    assert await rt.scheduler.run_due() == 0  # not early

    assert await deliver(rt, clock, 0.01, "r") == fid
    out = await rt.engine.handle(dm("r", "Same", choice=checkin_answer(fid, "same")))
    assert "physiotherapist or your doctor" in text_of(out)  # about two weeks without improvement
    f = await only_followup(rt.store, "r")
    assert (f.state, f.same_count, f.checkins) == ("pending", 2, 2)

    assert await deliver(rt, clock, interval, "r") == fid  # the third and last check-in
    out = await rt.engine.handle(dm("r", "Same", choice=checkin_answer(fid, "same")))
    assert "physiotherapist or your doctor" in text_of(out)
    assert "check in again" not in text_of(out)
    f = await only_followup(rt.store, "r")
    assert (f.state, f.checkins) == ("done", 3)
    clock.advance(days=30)
    assert await rt.scheduler.run_due() == 0
    assert len(adapter_of(rt).sent) == 3


async def test_worse_advises_a_professional(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    fid = await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("r", "Worse", choice=checkin_answer(fid, "worse")))
    text = text_of(out)
    assert out.kind == "followup"
    assert "physiotherapist or your doctor" in text
    assert rt.settings.safety.emergency_number in text  # the cauda equina safety net
    f = await only_followup(rt.store, "r")
    assert f.state == "pending" and f.due_at == clock.now() + timedelta(days=rt.settings.followups.interval_days)


async def test_free_text_worse_answers_the_checkin(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("r", "Worse"))
    assert out.kind == "followup"
    assert "physiotherapist or your doctor" in text_of(out)
    assert (await only_followup(rt.store, "r")).state == "pending"


async def test_free_text_red_flag_in_reply_to_a_checkin_escalates(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("r", EMERGENCY_TEXT))
    assert out.kind == "escalation"
    assert out.escalation is not None and out.escalation.level == "emergency"
    assert rt.settings.safety.emergency_number in text_of(out)
    user = await rt.store.find_user(PLATFORM, "r")
    assert user is not None
    assert [e["level"] for e in (await rt.store.export_user(user))["escalations"]] == ["emergency"]


async def test_a_checkin_answer_from_another_user_is_refused(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    fid = await deliver(rt, clock, 3, "r")
    out = await rt.engine.handle(dm("intruder", "Better", choice=checkin_answer(fid, "better")))
    assert out.kind == "expired"
    assert (await only_followup(rt.store, "r")).state == "awaiting"


# ---------------------------------------------------------------------------------------------- 3. delivery problems
async def test_checkin_overdue_more_than_seven_days_is_dropped(
    rt: Runtime, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    await accept_followup(rt.engine, "r")
    clock.advance(days=3 + rt.settings.followups.drop_overdue_days, seconds=1)
    with caplog.at_level("WARNING"):
        assert await rt.scheduler.run_due() == 0
    f = await only_followup(rt.store, "r")
    assert f.state == "dropped" and f.last_error
    assert adapter_of(rt).attempts == 0
    assert any("dropping follow-up" in r.getMessage() for r in caplog.records)


async def test_checkin_that_fell_due_while_down_goes_out_after_start(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    clock.advance(days=3 + 6)  # six days overdue: still sent
    assert await rt.scheduler.run_due() == 1
    assert (await only_followup(rt.store, "r")).state == "awaiting"


async def test_failing_send_is_retried_with_backoff_then_failed(rt: Runtime, clock: ManualClock) -> None:
    fs = rt.settings.followups
    adapter = adapter_of(rt)
    adapter.fail = DeliveryError("timeout", permanent=False)
    await accept_followup(rt.engine, "r")
    clock.advance(days=3)
    for attempt in range(1, fs.max_attempts):
        assert await rt.scheduler.run_due() == 0
        assert adapter.attempts == attempt
        f = await only_followup(rt.store, "r")
        delay = fs.retry_backoff_seconds[min(attempt - 1, len(fs.retry_backoff_seconds) - 1)]
        assert (f.state, f.attempts, f.last_error) == ("pending", attempt, "timeout")
        assert f.due_at == clock.now() + timedelta(seconds=delay)
        clock.advance(seconds=delay - 1)
        assert await rt.scheduler.run_due() == 0
        assert adapter.attempts == attempt  # not before the backoff
        clock.advance(seconds=1)
    assert await rt.scheduler.run_due() == 0
    assert adapter.attempts == fs.max_attempts
    f = await only_followup(rt.store, "r")
    assert (f.state, f.attempts) == ("failed", fs.max_attempts)
    clock.advance(days=1)
    assert await rt.scheduler.run_due() == 0
    assert adapter.attempts == fs.max_attempts


async def test_retry_succeeds_after_a_transient_failure(rt: Runtime, clock: ManualClock) -> None:
    adapter = adapter_of(rt)
    adapter.fail = DeliveryError("flaky")
    await accept_followup(rt.engine, "r")
    clock.advance(days=3)
    assert await rt.scheduler.run_due() == 0
    adapter.fail = None
    clock.advance(seconds=rt.settings.followups.retry_backoff_seconds[0])
    assert await rt.scheduler.run_due() == 1
    f = await only_followup(rt.store, "r")
    assert (f.state, f.attempts, f.last_error, f.checkins) == ("awaiting", 0, None, 1)


async def test_permanent_delivery_error_gives_up_and_cancels_the_users_followups(
    rt: Runtime, clock: ManualClock
) -> None:
    adapter = adapter_of(rt)
    await accept_followup(rt.engine, "blocked")
    await accept_followup(rt.engine, "other")

    async def block_one(target: ChatRef) -> None:
        adapter.fail = DeliveryError("bot was blocked", permanent=True) if target.user_id == "blocked" else None

    adapter.on_send = block_one
    clock.advance(days=3)
    assert await rt.scheduler.run_due() == 1
    assert [t.user_id for t, _ in adapter.sent] == ["other"]
    f = await only_followup(rt.store, "blocked")
    assert (f.state, f.attempts, f.last_error) == ("failed", 1, "bot was blocked")
    user = await rt.store.find_user(PLATFORM, "blocked")
    assert user is not None and await rt.store.user_followups(user, active_only=True) == []
    clock.advance(days=1)
    assert await rt.scheduler.run_due() == 0
    assert [t.user_id for t, _ in adapter.sent] == ["other"]


async def test_no_adapter_for_the_platform_leaves_the_checkin_due(rt: Runtime, clock: ManualClock) -> None:
    await accept_followup(rt.engine, "r")
    rt.scheduler.adapters.pop(PLATFORM)
    clock.advance(days=3)
    assert await rt.scheduler.run_due() == 0
    f = await only_followup(rt.store, "r")
    assert f.state == "pending" and f.attempts == 0


@pytest.mark.parametrize("command", ["/followups off", "/forget confirm"])
async def test_checkin_cancelled_while_the_batch_is_being_sent_is_not_sent(
    rt: Runtime, clock: ManualClock, command: str
) -> None:
    adapter = adapter_of(rt)
    await accept_followup(rt.engine, "first")
    clock.advance(minutes=1)
    await accept_followup(rt.engine, "second")  # due a minute later: the same batch, after "first"

    async def second_opts_out(target: ChatRef) -> None:
        if target.user_id == "first":
            out = await rt.engine.handle(dm("second", command))
            assert out.kind == "command"

    adapter.on_send = second_opts_out
    clock.advance(days=3)
    await rt.scheduler.run_due()
    assert [t.user_id for t, _ in adapter.sent] == ["first"]


async def test_followups_off_during_the_send_is_not_undone(rt: Runtime, clock: ManualClock) -> None:
    adapter = adapter_of(rt)
    await accept_followup(rt.engine, "r")

    async def opts_out(target: ChatRef) -> None:
        await rt.engine.handle(dm("r", "/followups off"))

    adapter.on_send = opts_out
    clock.advance(days=3)
    await rt.scheduler.run_due()
    assert (await only_followup(rt.store, "r")).state == "cancelled"
    status = await rt.engine.handle(dm("r", "/followups"))
    assert "check-in about your back" not in text_of(status)


# ---------------------------------------------------------------------------------------------- 4. runner in control
async def test_followups_off_cancels_and_stops_offers_then_on_again(rt: Runtime, clock: ManualClock) -> None:
    engine = rt.engine
    await accept_followup(engine, "r")
    out = await engine.handle(dm("r", "/followups off"))
    assert "cancelled 1" in text_of(out)
    assert (await only_followup(rt.store, "r")).state == "cancelled"
    clock.advance(days=3)
    assert await rt.scheduler.run_due() == 0
    assert adapter_of(rt).attempts == 0

    end = await run_triage(engine, "r")
    assert not any(button(p, "fu") for p in payloads(end))  # no offer while off
    stale = await engine.handle(dm("r", "Yes, check in", choice=followup_offer("self-care-mild")))  # an old button
    assert "turned off" in text_of(stale)
    assert (await only_followup(rt.store, "r")).state == "cancelled"  # nothing new stored

    status = await engine.handle(dm("r", "/followups"))
    assert "Check-ins are off" in text_of(status)
    out = await engine.handle(dm("r", "/followups on"))
    assert "on" in text_of(out)
    await accept_followup(engine, "r")
    user = await rt.store.find_user(PLATFORM, "r")
    assert user is not None
    assert [f.state for f in await rt.store.user_followups(user)] == ["cancelled", "pending"]


async def test_mydata_shows_a_summary_and_the_json(rt: Runtime, clock: ManualClock) -> None:
    engine = rt.engine
    await accept_followup(engine, "r")  # consent given here: the red flag after it is linked to the runner
    await engine.handle(dm("r", EMERGENCY_TEXT))
    out = await engine.handle(dm("r", "/mydata"))
    assert out.kind == "command"
    text = text_of(out)
    assert "everything I store about you" in text
    assert "safety warnings given: 1" in text
    attachment = out.replies[-1].attachment
    assert attachment is not None and attachment.filename == "runbot-mydata.json"
    data = json.loads(attachment.data)
    assert data["user"]["platform_user_id"] == "r" and data["user"]["platform"] == PLATFORM
    assert data["user"]["followups_enabled"] is True
    assert [e["level"] for e in data["escalations"]] == ["emergency"]
    assert [(f["topic"], f["state"], f["chat_id"]) for f in data["followups"]] == [
        ("self-care-mild", "pending", "dm-r")
    ]
    assert data["triage"] is None
    assert EMERGENCY_TEXT not in text  # never the runner's words


async def table_columns(store: SQLiteStore) -> dict[str, list[str]]:
    async with store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") as cur:
        tables = [r[0] for r in await cur.fetchall()]
    out = {}
    for table in tables:
        async with store.db.execute(f"PRAGMA table_info({table})") as cur:
            out[table] = [r[1] for r in await cur.fetchall()]
    return out


async def rows_about(store: SQLiteStore, user_id: int, markers: tuple[str, ...]) -> dict[str, int]:
    """Per table: rows whose user id column is the user's, or whose any value mentions one of the markers."""
    found = {}
    for table, columns in (await table_columns(store)).items():
        async with store.db.execute(f"SELECT * FROM {table}") as cur:
            rows = await cur.fetchall()
        n = 0
        for row in rows:
            values = dict(zip(columns, tuple(row), strict=True))
            if table == "users" and values["id"] == user_id:
                n += 1
            elif values.get("user_id") == user_id:
                n += 1
            elif any(m in str(v) for v in values.values() for m in markers):
                n += 1
        found[table] = n
    return found


async def test_forget_asks_then_deletes_every_row_about_the_user(rt: Runtime, clock: ManualClock) -> None:
    engine, store = rt.engine, rt.store
    gone, stays = "forget-me-7731", "bystander-7732"
    for who in (gone, stays):
        await accept_followup(engine, who)  # consents, followups
        await engine.handle(dm(who, EMERGENCY_TEXT))  # escalations (linked: consent was given)
        clock.advance(days=3)
        assert await rt.scheduler.run_due() == 1  # awaiting
        await engine.handle(dm(who, "/ask what socks do marathon pirates knit on tuesdays"))  # unanswered
        started = await engine.handle(dm(who, "/triage"))  # triage_state, left half-way (consent given above)
        await engine.handle(dm(who, "No", choice=all_choices(started)["No"]))
    await store.flush()
    user = await store.find_user(PLATFORM, gone)
    other = await store.find_user(PLATFORM, stays)
    assert user is not None and other is not None
    markers = (gone, f"dm-{gone}")
    before = await rows_about(store, user.id, markers)
    # unanswered: for /forget (issue 14); consents: who agreed to which text (issue 16)
    linked = {"users", "triage_state", "escalations", "followups", "unanswered", "consents"}
    assert {t for t, n in before.items() if n} == linked
    columns = await table_columns(store)
    # by design stats holds no user: assert it, so a new column is a deliberate decision
    assert not any("user" in c or "chat" in c for c in columns["stats"]), columns["stats"]
    async with store.db.execute("SELECT COUNT(*) FROM stats") as cur:
        assert (await cur.fetchone())[0] > 0  # type: ignore[index]

    ask = await engine.handle(dm(gone, "/forget"))
    assert {forget(True), forget(False)} <= set(payloads(ask))
    assert await rows_about(store, user.id, markers) == before  # nothing deleted before confirming
    kept = await engine.handle(dm(gone, "No, keep it", choice=forget(False)))
    assert "nothing was deleted" in text_of(kept)
    assert await rows_about(store, user.id, markers) == before

    done = await engine.handle(dm(gone, "Yes, delete everything", choice=forget(True)))
    assert "deleted everything" in text_of(done)
    await store.flush()
    after = await rows_about(store, user.id, markers)
    assert set(after) == set(columns)  # every table was looked at
    assert all(n == 0 for n in after.values()), after
    assert await store.find_user(PLATFORM, gone) is None
    survivor = await rows_about(store, other.id, (stays,))
    assert {t for t, n in survivor.items() if n} == linked
    clock.advance(days=30)
    assert [t.user_id for t, _ in adapter_of(rt).sent].count(gone) == 1  # only the one before /forget
    await rt.scheduler.run_due()
    assert [t.user_id for t, _ in adapter_of(rt).sent].count(gone) == 1


async def test_help_lists_the_followup_and_data_commands(rt: Runtime) -> None:
    text = text_of(await rt.engine.handle(dm("r", "/help")))
    for command in ("/followups", "/mydata", "/forget"):
        assert command in text


# ---------------------------------------------------------------------------------------------- 5. sleeping
async def insert_pending(store: SQLiteStore, n: int, clock: ManualClock, *, first_due_days: float = 1.0) -> None:
    """n users with one pending follow-up each, due from first_due_days on, one minute apart (one transaction)."""
    now = clock.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db = store.db
    await db.execute("BEGIN")
    await db.executemany(
        "INSERT INTO users (platform, platform_user_id, created_at) VALUES (?, ?, ?)",
        [(PLATFORM, f"bulk-{i}", stamp) for i in range(n)],
    )
    async with db.execute("SELECT id, platform_user_id FROM users WHERE platform_user_id LIKE 'bulk-%'") as cur:
        ids = {r[1]: r[0] for r in await cur.fetchall()}
    rows = []
    for i in range(n):
        due = (now + timedelta(days=first_due_days, minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append((ids[f"bulk-{i}"], PLATFORM, f"dm-bulk-{i}", "self-care-mild", due, "pending", stamp, stamp))
    await db.executemany(
        "INSERT INTO followups (user_id, platform, chat_id, topic, due_at, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    await db.execute("COMMIT")


async def traced(store: SQLiteStore, call: Callable[[], object]) -> list[str]:
    """The SQL statements (with bound values) that one store call runs."""
    statements: list[str] = []
    await store.db.set_trace_callback(statements.append)
    try:
        await call()  # type: ignore[misc]
    finally:
        await store.db.set_trace_callback(None)
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def test_due_query_and_next_due_use_the_index_with_10000_pending(rt: Runtime, clock: ManualClock) -> None:
    store = rt.store
    await insert_pending(store, 10_000, clock)
    clock.advance(days=1, minutes=30)
    for call in (lambda: store.due_followups(clock.now(), limit=50), store.next_due):
        statements = await traced(store, call)
        assert statements
        for sql in statements:
            async with store.db.execute("EXPLAIN QUERY PLAN " + sql) as cur:
                plan = [str(r[3]) for r in await cur.fetchall()]
            on_followups = [p for p in plan if re.search(r"\bfollowups\b|\bf\b", p)]
            assert on_followups, plan
            assert any("USING" in p and "INDEX followups_state_due" in p for p in on_followups), plan
            assert not any(re.match(r"SCAN (followups|f)\b(?! USING)", p) for p in on_followups), plan
    due = await store.due_followups(clock.now(), limit=50)
    assert len(due) == 31 and due == sorted(due, key=lambda f: f.due_at)
    assert await store.next_due() == clock.now() - timedelta(minutes=30)


async def test_seconds_until_next_is_the_time_to_the_earliest_due(rt: Runtime, clock: ManualClock) -> None:
    scheduler = rt.scheduler
    assert await scheduler.seconds_until_next() == scheduler.max_sleep  # nothing pending: the long cap
    scheduler.max_sleep = 30 * 86400.0
    await insert_pending(rt.store, 10_000, clock, first_due_days=2.5)
    assert await scheduler.seconds_until_next() == pytest.approx(2.5 * 86400)
    await accept_followup(rt.engine, "soon")  # due in 3 days: later than the earliest
    assert await scheduler.seconds_until_next() == pytest.approx(2.5 * 86400)
    clock.advance(days=2.5, seconds=-1234.5)
    assert await scheduler.seconds_until_next() == pytest.approx(1234.5)
    clock.advance(days=1)
    assert await scheduler.seconds_until_next() == 0.0


async def test_scheduler_task_sleeps_until_due_and_wakes_early_for_a_sooner_one(
    rt: Runtime, clock: ManualClock
) -> None:
    scheduler = rt.scheduler
    scheduler.max_sleep = 30 * 86400.0
    adapter = adapter_of(rt)

    async def settled(n: int) -> None:
        """Wait until the task has planned its n-th sleep."""
        for _ in range(500):
            if len(scheduler.sleeps) >= n:
                return
            await asyncio.sleep(0.002)
        raise AssertionError(f"scheduler did not sleep {n} times: {scheduler.sleeps}")

    late = await rt.store.get_or_create_user(PLATFORM, "late")
    await rt.store.add_followup(late, "dm-late", "self-care-mild", clock.now() + timedelta(days=10))
    task = asyncio.create_task(scheduler.run())
    try:
        await settled(1)
        assert scheduler.sleeps == [pytest.approx(10 * 86400)]  # not a short tick
        await asyncio.sleep(0.05)
        assert len(scheduler.sleeps) == 1  # really asleep: no polling

        await accept_followup(rt.engine, "soon")  # the engine's waker: due in 3 days, sooner than 10
        await settled(2)
        assert scheduler.sleeps[1] == pytest.approx(3 * 86400)
        assert adapter.sent == []

        clock.advance(days=3)
        scheduler.wake()
        await settled(3)
        assert [t.user_id for t, _ in adapter.sent] == ["soon"]
        assert scheduler.sleeps[2] == pytest.approx(7 * 86400)  # now the 10-day one is next
        await asyncio.sleep(0.05)
        assert len(scheduler.sleeps) == 3
    finally:
        scheduler.stop()
        await asyncio.wait_for(task, 5)
    assert task.done() and task.exception() is None


async def test_wake_during_next_due_lookup_is_not_lost(
    rt: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = rt.scheduler
    scheduler.max_sleep = 30 * 86400.0
    store = rt.store
    late = await store.get_or_create_user(PLATFORM, "late")
    await store.add_followup(late, "dm-late", "self-care-mild", clock.now() + timedelta(days=10))
    real_next_due = store.next_claimable
    raced = False

    async def next_due_with_a_message_in_between(*args: Any, **kw: Any) -> object:
        nonlocal raced
        result = await real_next_due(*args, **kw)
        if not raced:  # a runner accepts a check-in while the scheduler's query is in flight
            raced = True
            await accept_followup(rt.engine, "soon")
        return result

    monkeypatch.setattr(store, "next_claimable", next_due_with_a_message_in_between)  # what the scheduler asks
    task = asyncio.create_task(scheduler.run())
    try:
        for _ in range(200):
            if len(scheduler.sleeps) >= 2:
                break
            await asyncio.sleep(0.005)
        assert raced
        assert scheduler.sleeps[-1] == pytest.approx(3 * 86400), scheduler.sleeps
    finally:
        scheduler.stop()
        await asyncio.wait_for(task, 5)


async def test_scheduler_keeps_running_after_an_error(
    rt: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = rt.scheduler
    boom = RuntimeError("database hiccup")
    real = rt.store.claim_due
    calls = 0

    async def flaky(*args: Any, **kw: Any) -> list[Claim]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise boom
        return await real(*args, **kw)

    monkeypatch.setattr(rt.store, "claim_due", flaky)
    task = asyncio.create_task(scheduler.run())
    try:
        for _ in range(500):
            if scheduler.sleeps:
                break
            await asyncio.sleep(0.002)
        assert scheduler.sleeps == [60.0]  # retry in a minute, not a crash
        scheduler.wake()
        for _ in range(500):
            if len(scheduler.sleeps) >= 2:
                break
            await asyncio.sleep(0.002)
        assert scheduler.sleeps[1] == scheduler.max_sleep
    finally:
        scheduler.stop()
        await asyncio.wait_for(task, 5)


# ---------------------------------------------------------------------------------------------- settings
async def test_intervals_come_from_settings(tmp_path: Path, clock: ManualClock) -> None:
    fs = replace(SETTINGS.followups, first_after_days=1.0, interval_days=2.0, max_checkins=1)
    runtime = open_runtime(tmp_path / "custom.db", clock, replace(SETTINGS, followups=fs))
    async with runtime:
        runtime.add_adapter(RecordingAdapter())
        out = await accept_followup(runtime.engine, "r")
        assert "in 1 day" in text_of(out)
        fid = await deliver(runtime, clock, 1, "r")
        out = await runtime.engine.handle(dm("r", "Same", choice=checkin_answer(fid, "same")))
        assert (await only_followup(runtime.store, "r")).state == "done"  # max_checkins=1


# ---------------------------------------------------------------------------------------------- 6. operators, console
def test_cli_followups_list_shows_pending_in_runners_terms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import main
    from bot.core.ports import SystemClock

    monkeypatch.chdir(tmp_path)  # no ./config.yaml: built-in defaults
    db = tmp_path / "cli.db"

    async def seed() -> int:
        async with SQLiteStore(db) as store:
            user = await store.get_or_create_user("telegram", "4242")
            return await store.add_followup(user, "4242", "self-care-mild", SystemClock().now() + timedelta(days=3))

    assert main(["followups", "list", "--db", str(db)]) == 0
    assert "No pending follow-ups." in capsys.readouterr().out
    fid = asyncio.run(seed())
    assert main(["followups", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"#{fid} telegram user 4242 pending ")
    assert "UTC (in 3 days)" in out[0]


@pytest.mark.slow
def test_cli_followups_run_due_without_tokens_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    rc = main(["followups", "run-due", "--db", str(tmp_path / "cli.db"), "--knowledge", str(KNOWLEDGE)])
    assert rc == 1
    assert "TOKEN" in capsys.readouterr().err


async def test_console_shows_a_checkin_that_falls_due_while_chatting(tmp_path: Path, clock: ManualClock) -> None:
    import io

    from bot.adapters.console import CONSOLE_USER, ConsoleAdapter

    async with open_runtime(tmp_path / "console.db", clock) as runtime:
        out = io.StringIO()
        console = ConsoleAdapter(runtime.engine, out=out, read_line=lambda: "")
        runtime.add_adapter(console)
        end = await run_triage_on(runtime.engine, console)
        offer = all_choices(end)["Yes, check in"]
        accepted = await runtime.engine.handle(
            IncomingMessage("console", CONSOLE_USER, CONSOLE_USER, text="Yes, check in", choice=offer)
        )
        assert accepted.kind == "followup"
        clock.advance(days=3)
        assert await runtime.scheduler.run_due() == 1
        shown = out.getvalue()
        assert "How is your back today?" in shown
        assert "1. Better" in shown and "2. Same" in shown and "3. Worse" in shown
        picked = console.to_message("1")  # the runner types the number
        assert picked.choice is not None and picked.choice.endswith(":better")
        answer = await runtime.engine.handle(picked)
        assert answer.kind == "followup" and "great to hear" in text_of(answer)


async def run_triage_on(engine: Engine, console: object) -> Outcome:
    """The triage through the console's own message building (numbers typed for choices)."""
    from bot.adapters.console import ConsoleAdapter

    assert isinstance(console, ConsoleAdapter)
    out = await engine.handle(console.to_message("/triage"))
    if out.kind == "consent":  # the first check asks to store: typing "1" is "Yes, I agree"
        console.render(out.replies)
        out = await engine.handle(console.to_message("1"))
    for _ in range(15):
        console.render(out.replies)
        step = [r for r in out.replies if r.choices and any(button(c.payload, "tri") for c in r.choices)]
        if not step:
            return out
        labels = [c.label for r in out.replies for c in r.choices]
        label = next(p for p in PREFERRED if p in labels)
        out = await engine.handle(console.to_message(str(labels.index(label) + 1)))
    raise AssertionError("triage did not end")


async def test_mydata_json_holds_every_stored_column(rt: Runtime, clock: ManualClock) -> None:
    engine = rt.engine
    adapter_of(rt).fail = DeliveryError("dms closed")
    await accept_followup(engine, "r")
    clock.advance(days=3)
    await rt.scheduler.run_due()  # attempts=1, last_error set
    started = await engine.handle(dm("r", "/triage"))
    await engine.handle(dm("r", "No", choice=all_choices(started)["No"]))
    await engine.handle(dm("r", EMERGENCY_TEXT))
    started = await engine.handle(dm("r", "/triage"))
    await engine.handle(dm("r", "No", choice=all_choices(started)["No"]))
    attachment = (await engine.handle(dm("r", "/mydata"))).replies[-1].attachment
    assert attachment is not None
    data = json.loads(attachment.data)
    columns = await table_columns(rt.store)
    internal = {"id", "user_id"}
    aliases = {"created_at": "first_seen"}
    assert {aliases.get(c, c) for c in columns["users"]} - internal <= set(data["user"])
    assert set(columns["triage_state"]) - internal <= set(data["triage"])
    assert set(columns["escalations"]) - internal <= set(data["escalations"][0])
    assert set(columns["followups"]) - internal <= set(data["followups"][0])


async def test_a_checkin_answer_after_a_consent_change_stores_nothing_and_asks_again(
    rt: Runtime, clock: ManualClock
) -> None:
    import dataclasses

    from bot.core.consent_text import ConsentText
    from bot.core.followups import CHECKINS_STOPPED

    await accept_followup(rt.engine, "r")
    fid = await deliver(rt, clock, 3, "r")
    k = rt.knowledge.current
    rt.knowledge.swap(dataclasses.replace(k, consent=ConsentText("2", k.consent.text + " We now also keep X.")))
    out = await rt.engine.handle(dm("r", "Same", choice=checkin_answer(fid, "same")))
    assert out.kind == "consent"
    assert "Keep moving gently" in out.replies[0].text  # the advice is still given
    assert CHECKINS_STOPPED in text_of(out) and "version 2" in text_of(out)
    stored = await only_followup(rt.store, "r")
    assert stored.state == "cancelled" and stored.same_count == 0  # the answer itself was not stored
    clock.advance(days=30)
    assert await rt.scheduler.run_due() == 0
