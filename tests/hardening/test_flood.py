"""Flood control: 1,000 messages in one second from one user, identical red flags, other users unaffected.

Decision (documented in Engine._escalate): the token bucket counts every reply a user is sent. A first red-flag
escalation is never silenced, even on an empty bucket, but it spends its replies' tokens; a repeat of the same
escalation (same user and category) within ``safety.repeat_escalation_seconds`` gets a one-line reminder that goes
through the bucket like any message, so its "slow down" turn is a reminder and then the bot is quiet. The only
message outside the bound is the one-time first-contact privacy notice, which rides along with the first answer.
"""

from __future__ import annotations

import pytest
from support import dm, group

from bot.bootstrap import Runtime
from bot.core.engine import Engine
from bot.core.messages import IncomingMessage, Outcome
from bot.core.replies import SLOW_DOWN, escalation_reminder, first_notice

QUESTION = "why does my lower back hurt after running"
EMERGENCY = "crushing chest pain on my run and I feel faint"
CAUDA = "since this morning I can't feel my groin or bum and I wet myself without noticing"


class Ticker:
    """The engine's monotonic clock, moved by hand: 1,000 messages spread over 0.999 s."""

    def __init__(self, start: float = 5_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _flood(engine: Engine, ticker: Ticker, make: object, n: int = 1000,
                 other: IncomingMessage | None = None) -> tuple[list[Outcome], Outcome | None]:
    outcomes: list[Outcome] = []
    other_out = None
    start = ticker.now
    for i in range(n):
        ticker.now = start + i * (0.999 / n)
        outcomes.append(await engine.handle(make(i)))  # type: ignore[operator]
        if other is not None and i == n // 2:
            other_out = await engine.handle(other)
    return outcomes, other_out


def _replies(outcomes: list[Outcome]) -> list[str]:
    return [r.text for o in outcomes for r in o.replies]


@pytest.fixture
def ticker(runtime: Runtime) -> Ticker:
    t = Ticker()
    runtime.engine._monotonic = t
    return t


async def _returning(engine: Engine, user: str) -> None:
    """A runner who has talked to the bot before (has seen the first-contact notice), an hour ago."""
    await engine.handle(dm("hello", user=user))


async def test_1000_messages_in_one_second_get_at_most_11_replies(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    burst = runtime.settings.rate_limit.burst
    await _returning(engine, "flooder")
    ticker.now += 3600
    other = dm(QUESTION, user="bystander")
    outcomes, other_out = await _flood(engine, ticker, lambda i: dm(f"{QUESTION} {i}", user="flooder"), other=other)
    texts = _replies(outcomes)
    assert len(texts) <= burst + 1 == 11
    assert len(texts) == 11  # exactly: 10 answers and one "slow down"
    assert texts.count(SLOW_DOWN) == 1 and texts[-1] == SLOW_DOWN
    assert [o.kind for o in outcomes[:burst]] == ["answer"] * burst
    assert all(o.kind == "throttled" and not o.replies for o in outcomes[burst + 1:])
    # the other runner, in the middle of the flood, is answered normally (first contact: notice + answer)
    assert other_out is not None and other_out.kind == "answer"
    assert SLOW_DOWN not in _replies([other_out])


async def test_a_first_contact_flood_adds_only_the_one_time_notice(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    outcomes, _ = await _flood(engine, ticker, lambda i: dm(QUESTION, user="newcomer"))
    answered = [o for o in outcomes if o.replies]
    assert len(answered) == 11  # 10 answered messages + the "slow down"
    texts = _replies(outcomes)
    notice = first_notice(runtime.settings.safety)
    assert texts.count(notice) == 1 and len(texts) == 12


async def test_the_bucket_refills_and_slow_down_is_said_once_per_flood(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    rl = runtime.settings.rate_limit
    await _returning(engine, "u")
    first, _ = await _flood(engine, ticker, lambda i: dm(QUESTION, user="u"), n=50)
    assert _replies(first).count(SLOW_DOWN) == 1
    ticker.now += rl.per_seconds  # refills rl.messages tokens
    second, _ = await _flood(engine, ticker, lambda i: dm(QUESTION, user="u"), n=50)
    kinds = [o.kind for o in second]
    assert kinds[: rl.messages] == ["answer"] * rl.messages
    assert _replies(second).count(SLOW_DOWN) == 1  # said again once, for the new flood
    assert len(_replies(second)) == rl.messages + 1


@pytest.mark.slow
@pytest.mark.parametrize("private", [True, False], ids=["dm", "group"])
async def test_1000_identical_red_flags_get_at_most_11_replies_and_one_escalation(
    runtime: Runtime, ticker: Ticker, private: bool
) -> None:
    engine = runtime.engine

    def make(i: int) -> IncomingMessage:
        return dm(EMERGENCY, user="scared") if private else group(EMERGENCY, user="scared", name="Sam")

    outcomes, other = await _flood(engine, ticker, make, other=dm(QUESTION, user="bystander"))
    assert all(o.kind == "escalation" and o.escalation is not None for o in outcomes)
    texts = _replies(outcomes)
    assert len(texts) <= 11, len(texts)
    assert outcomes[0].replies, "a red flag is never silenced"
    full = [r for o in outcomes for r in o.replies if "🚨" in r.text]
    assert len(full) == 1, "the same escalation goes out at most once a minute"
    if not private:
        assert [r.private for r in outcomes[0].replies] == [False, True]  # public pointer + private details
    reminder = escalation_reminder(outcomes[0].escalation, runtime.settings.safety)  # type: ignore[arg-type]
    assert set(texts[len(outcomes[0].replies):]) <= {reminder}
    assert other is not None and other.kind == "answer"
    # one row in the safety log, not a thousand
    async with runtime.store.db.execute("SELECT COUNT(*) FROM escalations") as cur:
        assert (await cur.fetchone())[0] == 1


async def test_a_red_flag_is_never_silenced_by_an_exhausted_bucket(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    await _returning(engine, "u")
    outcomes, _ = await _flood(engine, ticker, lambda i: dm(QUESTION, user="u"), n=30)
    assert outcomes[-1].kind == "throttled" and not outcomes[-1].replies
    ticker.now += 0.01
    red = await engine.handle(dm(EMERGENCY, user="u"))
    assert red.kind == "escalation" and "🚨" in red.replies[0].text
    other_category = await engine.handle(dm(CAUDA, user="u"))  # a different red flag: its own escalation
    assert other_category.escalation is not None and other_category.replies
    assert other_category.escalation.category != red.escalation.category  # type: ignore[union-attr]
    assert escalation_reminder(other_category.escalation, runtime.settings.safety) not in _replies([other_category])


async def test_the_same_escalation_goes_out_again_after_a_minute(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    window = runtime.settings.safety.repeat_escalation_seconds
    first = await engine.handle(dm(EMERGENCY, user="u"))
    ticker.now += window / 2
    repeat = await engine.handle(dm(EMERGENCY, user="u"))
    ticker.now += window / 2 + 1
    later = await engine.handle(dm(EMERGENCY, user="u"))
    assert "🚨" in first.replies[0].text
    assert [r.text for r in repeat.replies] == [escalation_reminder(repeat.escalation, runtime.settings.safety)]  # type: ignore[arg-type]
    assert "🚨" in later.replies[0].text
    other_user = await engine.handle(dm(EMERGENCY, user="v"))  # per user: someone else gets the full escalation
    assert "🚨" in other_user.replies[0].text


async def test_overheard_chatter_is_throttled_silently(runtime: Runtime, ticker: Ticker) -> None:
    engine = runtime.engine
    outcomes, _ = await _flood(
        engine, ticker,
        lambda i: IncomingMessage("test", "chatty", "club", text=QUESTION, is_private=False, listen_only=True),
        n=200,
    )
    texts = _replies(outcomes)
    assert 1 <= len(texts) <= runtime.settings.rate_limit.burst
    assert SLOW_DOWN not in texts
