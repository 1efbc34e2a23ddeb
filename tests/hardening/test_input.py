"""Hostile input: a corpus of nasty strings, a property test over arbitrary Unicode, forged buttons, long text."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import KNOWLEDGE, build_shipped, dm, group, press_agree, shipped_knowledge

from bot import bootstrap
from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core import payloads
from bot.core.engine import EngineOptions
from bot.core.knowledge import Knowledge
from bot.core.messages import IncomingMessage, Outcome
from bot.core.payloads import MAX_PAYLOAD_BYTES
from bot.core.ports import ManualClock
from bot.core.replies import EXPIRED
from bot.core.text import MAX_MATCH_CHARS

QUESTION = "why does my lower back hurt after running"

NASTY = [
    "",
    " ",
    "\t\n\r  \n",
    "🙂🙂🙂",
    "🏃‍♀️💥🔥" * 50,
    "\u200b\u200c\u200d\ufeff",
    "\u200bwhy\u200b does\u200b my\u200b back\u200b hurt",
    "\x00",
    "back\x00pain\x00after\x00running",
    "\x01\x02\x03\x07\x1b[31mred\x1b[0m\x7f",
    "\u202eeb ot gninnur retfa stru kcab ym\u202c",
    "\u2066\u2067\u2068 nested isolates \u2069",
    "a\u0301" * 500,
    "Z" + "\u0336\u0334\u0335\u0337\u0338\u0321\u0322" * 400,
    "x" * 100_000,
    (QUESTION + " ") * 3000,
    "\ud800",
    "back \udfff pain \ud83d",
    "'; DROP TABLE users; --",
    "1' OR '1'='1",
    "\"); DELETE FROM followups WHERE (1=1",
    "**bold** __under__ ~~strike~~ ||spoiler|| `code` ```block```",
    "[click me](https://evil.example/phish)",
    "<b>bold</b><script>alert(1)</script><a href='https://evil.example'>x</a>",
    "@everyone @here <@123456789> <@&987654321> <#111>",
    "/",
    "/ ",
    "//",
    "/[x](https://evil.example)",
    "/__init__",
    "/ask",
    "/ask " + "\u202e" * 20,
    "/faq reload",
    "/forget confirm maybe",
    "%s%s%s%n {0} {emergency_number} {{}}",
    "\\N{BULLET} \\x00 \\u202e",
    "\U0010ffff\U000e0001\U000f0000",
    "ﷺ" * 300,
    "𒐫" * 2000,
    "\n" * 5000,
]


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return shipped_knowledge()


@pytest.fixture
async def guarded(
    tmp_path: Path, clock: ManualClock, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    """The default settings (notice and flood control on) on a real SQLite file; knowledge is loaded once (it is
    immutable)."""
    monkeypatch.setattr(bootstrap, "load_knowledge", lambda path: knowledge)
    rt = build_shipped(Settings(), clock=clock, db_path=tmp_path / "runbot.db")
    async with rt:
        yield rt


def _sensible(out: Outcome) -> None:
    assert out.kind != "error", "the engine hit an exception (logged) and answered with its apology"
    assert out.replies, out.kind
    for reply in out.replies:
        assert reply.text.strip()
        for choice in reply.choices:
            assert len(choice.payload.encode("utf-8")) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("text", NASTY, ids=[f"nasty{i}" for i in range(len(NASTY))])
async def test_every_nasty_string_gets_a_reply(guarded: Runtime, text: str) -> None:
    engine = guarded.engine
    users = itertools.count()
    for msg in (
        dm(text, user=f"dm-{next(users)}"),
        group(text, user=f"g-{next(users)}", name=text[:100]),
        IncomingMessage("test", f"m-{next(users)}", "club", text=text, is_private=False, is_moderator=True),
    ):
        started = time.perf_counter()
        out = await engine.handle(msg)
        assert time.perf_counter() - started < 2.0, "a hostile message must not stall the loop"
        _sensible(out)
    # overheard in a listen channel: nothing or a confident answer, never an error
    heard = await engine.handle(IncomingMessage("test", "l-1", "club", text=text, is_private=False, listen_only=True))
    assert heard.kind in ("silent", "answer", "escalation", "throttled")


async def test_over_2000_characters_is_cut_for_matching_and_still_answered(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    short = await engine.handle(dm(QUESTION))
    assert short.kind == "answer"
    padded = QUESTION + " " + "lorem ipsum dolor " * 6000  # ~108 kB of filler after the question
    assert len(padded) > 50 * MAX_MATCH_CHARS
    started = time.perf_counter()
    long = await engine.handle(dm(padded, user="u2"))
    elapsed = time.perf_counter() - started
    assert (long.kind, long.faq_id) == ("answer", short.faq_id)
    assert elapsed < 1.0, f"{elapsed:.2f} s for a 100 kB message"
    # the question after the cut is not seen: the runner gets a sensible non-answer, not a crash
    hidden = await engine.handle(dm("lorem " * 400 + QUESTION, user="u3"))
    assert hidden.kind in ("fallback", "did-you-mean", "empty") and hidden.replies


FORGED = [
    "",
    "faq:",
    "faq:no-such-entry",
    "faq:_chatter",
    "tri:",
    "tri:nope:0",
    "tri:start:extra",
    "tri:x:²",  # a Unicode digit: str.isdigit() says yes, int() would raise
    "tri:" + "a" * 80 + ":1",
    "fu:",
    "fu:999:better",
    "fu:1:²",
    "fu:²:better",
    "fu:yes:made-up-topic",
    "fu:yes:" + "x" * 60,
    "cmd:",
    "cmd:faq:reload",
    "cmd:forget:yes",
    "cmd:[x](https://evil.example)",
    "cmd:mydata",
    "forget:",
    "forget:maybe",
    "forget:yes:now",
    "bogus",
    "x" * 500,
    "\x00",
    "\ud800",
    "faq:\u202eevil",
    "🙂:🙂",
]


@pytest.mark.parametrize("payload", FORGED, ids=[f"forged{i}" for i in range(len(FORGED))])
async def test_forged_unknown_and_stale_buttons_expire(quiet_runtime: Runtime, payload: str) -> None:
    out = await quiet_runtime.engine.handle(dm(choice=payload))
    assert out.kind == "expired", (payload, out.kind)
    assert [r.text for r in out.replies] == [EXPIRED]
    assert "that button has expired" in out.replies[0].text.lower()


async def test_a_stale_triage_button_expires_after_the_check_moved_on(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    start = await press_agree(engine, await engine.handle(dm("/triage")), dm("/triage"))
    first = start.replies[-1].choices[0].payload
    moved = await engine.handle(dm(choice=first))
    assert moved.kind in ("triage", "escalation")
    again = await engine.handle(dm(choice=first))  # the same button pressed twice
    assert again.kind == "expired"
    await engine.handle(dm("/cancel"))
    assert (await engine.handle(dm(choice=first))).kind == "expired"


async def test_real_buttons_still_work(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    fallback = await engine.handle(dm("qwerty zxcvb asdfgh"))
    offered = [c.payload for r in fallback.replies for c in r.choices]
    assert payloads.command("triage") in offered and payloads.command("help") in offered
    assert (await engine.handle(dm(choice=payloads.command("help")))).kind == "command"
    assert (await engine.handle(dm(choice=payloads.command("triage")))).kind == "consent"  # the check asks to store
    assert (await engine.handle(dm(choice=payloads.forget(False)))).kind == "command"
    faq_id = next(iter(quiet_runtime.knowledge.current.entries))
    assert (await engine.handle(dm(choice=payloads.faq(faq_id)))).faq_id == faq_id


# ------------------------------------------------------------------------------------------ property test
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s)>\]]+")


def _knowledge_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(KNOWLEDGE.glob("*.yaml")))


_anything = st.characters(codec=None, exclude_categories=())  # every code point, lone surrogates included
_hostile_text = st.one_of(
    st.text(_anything, max_size=300),
    st.text(max_size=40).map(lambda t: QUESTION + t),
    st.builds(lambda a, b: f"/{a} {b}", st.text(_anything, max_size=20), st.text(_anything, max_size=40)),
    st.builds(lambda a, u: f"{a} https://{u}.example/x [y](http://{u}.example)", st.text(max_size=30),
              st.from_regex(r"[a-z]{3,10}", fullmatch=True)),
    st.sampled_from(NASTY[:14]).flatmap(lambda n: st.text(_anything, max_size=50).map(lambda t: n + t)),
)
_prefixes = st.sampled_from(["", "faq:", "tri:", "tri:start", "fu:", "fu:yes:", "cmd:", "forget:", "1:faq:", "1:tri:",
                             "1:fu:", "1:cmd:", "1:", "2:faq:", "0:forget:"])
_hostile_choice = st.builds(lambda p, t: (p + t), _prefixes, st.text(_anything, max_size=70))


@pytest.mark.slow
def test_property_arbitrary_unicode_never_breaks_the_engine(tmp_path: Path) -> None:
    """2,000 examples through the text and button entry points of one runtime on a real SQLite file."""
    knowledge_text = _knowledge_text()
    loop = asyncio.new_event_loop()
    options = EngineOptions(first_notice=True, rate_limit=False)  # each example is one message; flood has its test
    rt = build_shipped(Settings(), clock=ManualClock(), db_path=tmp_path / "prop.db",
               options=options)
    loop.run_until_complete(rt.start())
    users = itertools.count()
    examples = [0]
    issued = {payloads.decode(p) for p in (*map(payloads.faq, rt.knowledge.current.entries), payloads.triage_start(),
                                            payloads.command("triage"), payloads.command("help"),
                                            payloads.command("followups", "on"), payloads.command("followups", "off"),
                                            payloads.forget(True), payloads.forget(False), payloads.followup_decline())}
    unchecked = {payloads.Kind.TRIAGE, payloads.Kind.FOLLOWUP}  # their meaning depends on the user's stored state

    @settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              database=None)
    @given(text=_hostile_text, choice=_hostile_choice, private=st.booleans(), name=st.text(_anything, max_size=40))
    def check(text: str, choice: str, private: bool, name: str) -> None:
        examples[0] += 1
        user = f"p{next(users)}"
        msg = IncomingMessage("test", user, f"chat-{user}", text=text, is_private=private, display_name=name)
        out = loop.run_until_complete(rt.engine.handle(msg))
        _sensible(out)
        for reply in out.replies:
            for url in _URL.findall(reply.text):
                assert url.rstrip(".,;") in knowledge_text, f"link not from the knowledge files: {url}"
        pressed = loop.run_until_complete(rt.engine.handle(IncomingMessage("test", user, f"chat-{user}",
                                                                           choice=choice, is_private=private)))
        _sensible(pressed)
        decoded = payloads.decode(choice)
        if decoded is None or (replace(decoded, version=payloads.VERSION) not in issued
                               and decoded.kind not in unchecked):
            assert pressed.kind == "expired", (choice, pressed.kind)
        if pressed.kind == "expired":
            assert [r.text for r in pressed.replies] == [EXPIRED]

    started = time.perf_counter()
    try:
        check()
    finally:
        loop.run_until_complete(rt.close())
        loop.close()
    assert examples[0] >= 2000, examples[0]
    assert time.perf_counter() - started < 60
