"""The Store contract (bot/core/store.py), the same on both stores: each test runs on SQLite and on PostgreSQL.

Two stores opened on one database stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.core.ports import ManualClock
from bot.core.store import Store, StoredTriage, StoreUnavailable
from bot.storage import make_store

Opener = Callable[[], Awaitable[Any]]
LEASE = timedelta(minutes=5)


# ---------------------------------------------------------------------------------------- users
async def test_a_user_row_exists_only_once_created_and_only_once(any_store: Store) -> None:
    assert await any_store.find_user("telegram", "42") is None  # reading never creates
    first = await any_store.get_or_create_user("telegram", "42")
    again = await any_store.get_or_create_user("telegram", "42")
    other = await any_store.get_or_create_user("discord", "42")
    assert first.new and not again.new and again.id == first.id and other.id != first.id
    assert (first.notice_shown, first.followups_enabled) == (False, True)
    await any_store.set_notice_shown(first)
    await any_store.set_followups_enabled(first, False)
    found = await any_store.find_user("telegram", "42")
    assert found is not None and (found.notice_shown, found.followups_enabled) == (True, False)
    assert await any_store.user_by_id(first.id) == found


async def test_two_processes_creating_one_user_at_once_get_one_row(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    rows = await asyncio.gather(*(s.get_or_create_user("telegram", "7") for s in (a, b) for _ in range(5)))
    assert len({r.id for r in rows}) == 1 and sum(r.new for r in rows) == 1


# ---------------------------------------------------------------------------------------- triage
async def test_triage_progress_is_saved_replaced_and_cleared(any_store: Store) -> None:
    user = await any_store.get_or_create_user("test", "r")
    assert await any_store.get_triage(user) is None and await any_store.conversation(user) == (None, None)
    await any_store.save_triage(user, StoredTriage("back", "q1", (), "dm"))
    await any_store.save_triage(user, StoredTriage("back", "q2", (("q1", 0),), "dm"))
    assert await any_store.get_triage(user) == StoredTriage("back", "q2", (("q1", 0),), "dm")
    assert await any_store.clear_triage(user) and not await any_store.clear_triage(user)


async def test_the_conversation_names_the_check_in_awaiting_an_answer(any_store: Store, clock: ManualClock) -> None:
    user = await any_store.get_or_create_user("test", "r")
    fid = await any_store.add_followup(user, "dm", "mild", clock.now())
    assert await any_store.conversation(user) == (None, None)
    assert await any_store.update_followup(fid, state="awaiting")
    await any_store.save_triage(user, StoredTriage("back", "q1", (), "dm"))
    assert await any_store.conversation(user) == (StoredTriage("back", "q1", (), "dm"), fid)


# ---------------------------------------------------------------------------------------- consent
async def test_consent_is_given_renewed_and_withdrawn_with_every_health_row(
    any_store: Store, clock: ManualClock
) -> None:
    user = await any_store.get_or_create_user("test", "r")
    assert await any_store.consent_of(user) is None
    await any_store.give_consent(user, "1", "a" * 64)
    clock.advance(days=1)
    await any_store.give_consent(user, "2", "b" * 64)
    record = await any_store.consent_of(user)
    assert record is not None and (record.version, record.text_hash, record.given_at) == ("2", "b" * 64, clock.now())
    await any_store.save_triage(user, StoredTriage("back", "q1", (), "dm"))
    await any_store.add_followup(user, "dm", "mild", clock.now())
    await any_store.log_escalation(user, "urgent", "fever")
    await any_store.record_unanswered("what about my hamstring", user.id)
    await any_store.flush()
    removed = await any_store.withdraw_consent(user)
    assert removed == {"triage_state": 1, "followups": 1, "escalations": 1, "unanswered": 1, "consents": 1}
    assert await any_store.consent_of(user) is None and await any_store.find_user("test", "r") is not None


# ---------------------------------------------------------------------------------------- safety log
async def test_the_safety_log_links_a_row_to_a_user_or_to_nobody_and_keeps_no_text(
    any_store: Store, clock: ManualClock
) -> None:
    user = await any_store.get_or_create_user("test", "r")
    await any_store.log_escalation(user, "emergency", "cauda-equina")
    await any_store.log_escalation(None, "urgent", "fever")
    assert [e["category"] for e in (await any_store.export_user(user))["escalations"]] == ["cauda-equina"]
    clock.advance(days=200)
    assert await any_store.purge_older_than(180) == 2  # both rows, linked or not


# ---------------------------------------------------------------------------------------- follow-ups
async def test_a_new_series_replaces_the_active_one_and_updates_respect_the_expected_state(
    any_store: Store, clock: ManualClock
) -> None:
    user = await any_store.get_or_create_user("test", "r")
    old = await any_store.add_followup(user, "dm", "a", clock.now() + timedelta(days=3))
    new = await any_store.add_followup(user, "dm", "b", clock.now() + timedelta(days=3, microseconds=5))
    states = {f.id: f.state for f in await any_store.user_followups(user)}
    assert states == {old: "cancelled", new: "pending"}
    assert [f.id for f in await any_store.user_followups(user, active_only=True)] == [new]
    assert [f.id for f in await any_store.list_followups()] == [new]
    assert not await any_store.update_followup(new, expect_state="awaiting", state="done")
    assert await any_store.update_followup(new, expect_state="pending", state="awaiting", checkins=1)
    f = await any_store.get_followup(new)
    assert f is not None and (f.state, f.checkins, f.platform_user_id) == ("awaiting", 1, "r")
    assert f.due_at == clock.now() + timedelta(days=3, microseconds=5)  # microseconds survive the round trip
    with pytest.raises(TypeError):
        await any_store.update_followup(new, user_id=99)
    assert await any_store.cancel_followups(user) == 1


async def test_retention_removes_stale_check_answers_and_finished_check_ins(
    any_store: Store, clock: ManualClock
) -> None:
    user = await any_store.get_or_create_user("test", "r")
    await any_store.save_triage(user, StoredTriage("back", "q1", (), "dm"))
    done = await any_store.add_followup(user, "dm", "a", clock.now())
    await any_store.update_followup(done, state="done")
    await any_store.add_followup(user, "dm", "b", clock.now())  # the old one becomes cancelled: finished too
    clock.advance(days=31)
    assert await any_store.purge_health(triage_days=30) == 2  # the stale answers and the finished series
    assert [f.state for f in await any_store.user_followups(user)] == ["pending"]


# ---------------------------------------------------------------------------------------- claims
async def _due(store: Store, clock: ManualClock, n: int, platform: str = "telegram") -> list[int]:
    ids = []
    for i in range(n):
        user = await store.get_or_create_user(platform, f"u{i}")
        ids.append(await store.add_followup(user, f"c{i}", "t", clock.now() - timedelta(minutes=n - i)))
    return ids


async def test_processes_claiming_at_once_never_get_the_same_check_in(
    open_store: Opener, clock: ManualClock
) -> None:
    stores = [await open_store() for _ in range(3)]
    ids = await _due(stores[0], clock, 60)
    got: dict[str, list[int]] = {}

    async def drain(store: Store, owner: str) -> None:
        while batch := await store.claim_due(owner, clock.now(), LEASE, platforms={"telegram"}, limit=7):
            got.setdefault(owner, []).extend(c.followup.id for c in batch)
            for claim in batch:
                assert await store.claim_held(claim, owner)
                assert await store.complete_claim(claim, owner, clock.now())
            await asyncio.sleep(0)

    await asyncio.gather(*(drain(s, f"host:1:{i}") for i, s in enumerate(stores)))
    claimed = [fid for ids_ in got.values() for fid in ids_]
    assert sorted(claimed) == sorted(ids)  # every one exactly once
    assert all(f.state == "awaiting" for f in await stores[0].list_followups())


async def test_a_claim_passes_to_another_process_only_after_its_lease(open_store: Opener, clock: ManualClock) -> None:
    first, second = await open_store(), await open_store()
    (fid,) = await _due(first, clock, 1)
    (claim,) = await first.claim_due("elsewhere:1:a", clock.now(), LEASE, platforms={"telegram"})
    assert claim.send_key == f"fu:{fid}:1" and claim.followup.state == "sending"
    assert await second.claim_due("elsewhere:2:b", clock.now() + LEASE / 2, LEASE, platforms={"telegram"}) == []
    assert await second.next_claimable({"telegram"}) == clock.now() + LEASE
    later = clock.now() + LEASE + timedelta(seconds=1)
    (taken,) = await second.claim_due("elsewhere:2:b", later, LEASE, platforms={"telegram"})
    assert taken.send_key == claim.send_key  # the same send: one idempotency key
    assert not await first.claim_held(claim, "elsewhere:1:a")
    assert not await first.complete_claim(claim, "elsewhere:1:a", later)  # the lost owner can do nothing
    assert not await first.release_claim(claim, "elsewhere:1:a", later, state="pending")
    assert await second.complete_claim(taken, "elsewhere:2:b", later)
    assert await first.already_sent(claim.send_key) and not await first.already_sent("fu:0:1")
    assert await first.purge_sent_keys(later + timedelta(seconds=1)) == 1


async def test_a_released_claim_goes_back_with_its_new_due_time(any_store: Store, clock: ManualClock) -> None:
    (fid,) = await _due(any_store, clock, 1)
    (claim,) = await any_store.claim_due("h:1:x", clock.now(), LEASE, platforms={"telegram"})
    retry = clock.now() + timedelta(minutes=10)
    assert await any_store.release_claim(claim, "h:1:x", clock.now(), state="pending", attempts=1, due_at=retry)
    f = await any_store.get_followup(fid)
    assert f is not None and (f.state, f.attempts, f.due_at) == ("pending", 1, retry)
    assert await any_store.claim_due("h:1:x", clock.now(), LEASE, platforms={"telegram"}) == []
    assert await any_store.next_claimable({"telegram"}) == retry
    assert await any_store.claim_due("h:1:x", clock.now(), LEASE, platforms=set()) == []


async def test_only_the_platforms_running_here_are_claimed(any_store: Store, clock: ManualClock) -> None:
    await _due(any_store, clock, 2, platform="discord")
    assert await any_store.claim_due("h:1:x", clock.now(), LEASE, platforms={"telegram"}) == []
    assert await any_store.next_claimable({"telegram"}) is None
    assert len(await any_store.claim_due("h:1:x", clock.now(), LEASE, platforms={"discord"})) == 2


# ---------------------------------------------------------------------------------------- counters
async def test_counters_and_unanswered_questions_add_up_across_processes(
    open_store: Opener, clock: ManualClock
) -> None:
    a, b = await open_store(), await open_store()
    user = await a.get_or_create_user("test", "asker")
    for store in (a, b):
        for _ in range(3):
            await store.increment("messages")
            await store.record_unanswered("is yoga good", user.id)
        await store.increment("answer", 2)
        await store.record_unanswered("is yoga good")
    await asyncio.gather(a.flush(), b.flush())
    assert await a.stats() == {"messages": 6, "answer": 4}
    assert [(q["text"], q["count"]) for q in await b.unanswered()] == [("is yoga good", 8)]
    assert await a.stats(since=clock.now() + timedelta(days=1)) == {}
    mine = (await a.export_user(user))["unanswered"]
    assert [(q["question"], q["count"]) for q in mine] == [("is yoga good", 6)]  # the unlinked ones are nobody's


# ---------------------------------------------------------------------------------------- the runner's data
async def test_export_holds_every_row_and_forget_removes_them(any_store: Store, clock: ManualClock) -> None:
    user = await any_store.get_or_create_user("test", "r")
    await any_store.give_consent(user, "1", "h")
    await any_store.save_triage(user, StoredTriage("back", "q2", (("q1", 1),), "dm"))
    await any_store.add_followup(user, "dm", "mild", clock.now())
    await any_store.log_escalation(user, "urgent", "fever")
    await any_store.record_unanswered("knee or back", user.id)
    data = await any_store.export_user(user)
    assert data["user"]["platform_user_id"] == "r" and data["user"]["first_seen"].endswith("Z")
    assert data["triage"]["answers"] == [["q1", 1]] and data["consent"]["version"] == "1"
    assert [f["topic"] for f in data["followups"]] == ["mild"] and data["followups"][0]["due_at"].endswith("Z")
    assert len(data["escalations"]) == 1 and len(data["unanswered"]) == 1
    await any_store.forget_user(user)
    assert await any_store.find_user("test", "r") is None
    assert await any_store.list_followups() == [] and await any_store.unanswered() == []


# ---------------------------------------------------------------------------------------- one user at a time
async def test_one_users_turns_follow_each_other_and_other_users_do_not_wait(any_store: Store) -> None:
    events: list[str] = []
    entered = asyncio.Event()

    async def turn(who: str, name: str, hold: float) -> None:
        async with any_store.serialized("test", who):
            events.append(f"{name} in")
            entered.set()
            await asyncio.sleep(hold)
            events.append(f"{name} out")

    first = asyncio.create_task(turn("r", "a", 0.3))
    await entered.wait()
    await asyncio.gather(turn("r", "b", 0), turn("someone else", "c", 0), first)
    assert events.index("a out") < events.index("b in")  # the same user waited
    assert events.index("c out") < events.index("a out")  # another user did not


# ---------------------------------------------------------------------------------------- errors
async def test_a_closed_store_raises_the_cores_error_not_the_drivers(location: str, clock: ManualClock) -> None:
    store = make_store(location, clock=clock)
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.find_user("test", "r")
    with pytest.raises(StoreUnavailable):
        await store.claim_due("h:1:x", clock.now(), LEASE, platforms={"telegram"})
