"""The per-chat outbox and the per-chat lanes (bot/core/outbox.py) with plain async actions."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.core.outbox import Lanes, Outbox, OutboxLimits, ShuttingDown, Throttled, TokenBucket
from bot.core.ports import DeliveryError

FAST = OutboxLimits(global_rate=0, chat_rate=0, group_rate=0)  # no pacing: order and isolation only


def _recorder(log: list[tuple[str, float]], name: str, *, throttle: list[float] | None = None):  # type: ignore[no-untyped-def]
    async def action() -> str:
        if throttle:
            raise Throttled(throttle.pop(0))
        log.append((name, time.monotonic()))
        return name

    return action


async def test_retry_after_pauses_only_its_chat_and_urgent_jobs_jump_the_queue() -> None:
    outbox = Outbox(FAST)
    log: list[tuple[str, float]] = []
    started = time.monotonic()
    first = outbox.submit("a", [_recorder(log, "a1", throttle=[0.3])])  # "retry after 0.3 s"
    await asyncio.sleep(0)
    second = outbox.submit("a", [_recorder(log, "a2")])
    alarm = outbox.submit("a", [_recorder(log, "a-alarm")], urgent=True)
    other = outbox.submit("b", [_recorder(log, "b1")])
    assert await other == ["b1"]
    assert time.monotonic() - started < 0.2  # chat b did not wait for chat a's flood control
    assert await asyncio.gather(first, second, alarm) == [["a1"], ["a2"], ["a-alarm"]]
    order = [name for name, _ in log]
    assert order == ["b1", "a1", "a-alarm", "a2"]  # the one being retried, then the alarm, then the queue
    assert dict(log)["a1"] - started >= 0.3


async def test_a_long_retry_after_fails_the_job_instead_of_holding_the_chat() -> None:
    outbox = Outbox(OutboxLimits(global_rate=0, chat_rate=0, max_retry_after=5))
    log: list[tuple[str, float]] = []
    job = outbox.submit("a", [_recorder(log, "a1", throttle=[3600])])
    with pytest.raises(DeliveryError, match="retry after 3600"):
        await job
    assert await outbox.submit("a", [_recorder(log, "a2")]) == ["a2"]


async def test_close_fails_queued_jobs_as_not_sent_and_lets_a_send_on_the_wire_finish() -> None:
    outbox = Outbox(FAST)
    finished = asyncio.Event()

    async def slow() -> str:
        await asyncio.sleep(0.1)
        finished.set()
        return "slow"

    on_wire = outbox.submit("a", [slow])
    queued = outbox.submit("a", [_recorder([], "later")])
    paused = outbox.submit("b", [_recorder([], "b", throttle=[30])])
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await outbox.close(1.0)
    assert time.monotonic() - started < 0.6  # the paused chat did not hold the shutdown
    assert finished.is_set() and await on_wire == ["slow"]
    for job in (queued, paused):
        with pytest.raises(ShuttingDown):
            await job
    with pytest.raises(ShuttingDown):
        await outbox.submit("c", [slow])


async def test_the_global_bucket_paces_all_chats_together() -> None:
    outbox = Outbox(OutboxLimits(global_rate=100, global_burst=5, chat_rate=0))
    log: list[tuple[str, float]] = []
    started = time.monotonic()
    jobs = [outbox.submit(f"chat{i}", [_recorder(log, str(i))]) for i in range(25)]
    await asyncio.gather(*jobs)
    # 5 at once, then 20 more at 100 a second: about 0.2 s
    assert 0.15 <= time.monotonic() - started < 1.5


def test_token_bucket_lends_to_urgent_sends_and_others_pay_later() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1, burst=2, clock=lambda: now[0])
    bucket.take()
    bucket.take()
    assert bucket.delay() == pytest.approx(1.0)
    bucket.take()  # urgent: taken anyway
    assert bucket.delay() == pytest.approx(2.0)
    now[0] = 2.0
    assert bucket.delay() == 0.0


async def test_lanes_keep_order_within_a_key_and_run_keys_concurrently() -> None:
    seen: list[tuple[str, int]] = []
    release = asyncio.Event()

    async def handle(item: tuple[str, int]) -> None:
        if item == ("slow", 1):
            await release.wait()
        seen.append(item)

    lanes: Lanes[tuple[str, int]] = Lanes(handle, max_waiting=10)
    for i in range(1, 4):
        await lanes.put("slow", ("slow", i))
        await lanes.put("fast", ("fast", i))
    for _ in range(50):
        if len(seen) == 3:
            break
        await asyncio.sleep(0.01)
    assert seen == [("fast", 1), ("fast", 2), ("fast", 3)]  # not held up by the slow key
    release.set()
    for _ in range(50):
        if len(seen) == 6:
            break
        await asyncio.sleep(0.01)
    assert seen[3:] == [("slow", 1), ("slow", 2), ("slow", 3)]  # in order within the key
    await lanes.close(0.1)


async def test_lanes_bound_what_waits_in_memory() -> None:
    gate = asyncio.Event()

    async def handle(item: int) -> None:
        await gate.wait()

    lanes: Lanes[int] = Lanes(handle, max_waiting=3)
    for i in range(3):
        await lanes.put(i % 2, i)
    assert lanes.full
    blocked = asyncio.create_task(lanes.put(0, 99))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # the fetcher waits for room
    gate.set()
    await asyncio.wait_for(blocked, 1)
    await lanes.close(0.5)
