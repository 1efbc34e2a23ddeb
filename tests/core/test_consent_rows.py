"""A runner's row exists only once something about them must be kept (issue 16): questions and safety advice store
nothing; consent, a setting (/followups off) create the row; the one-time notice of a runner without a row is kept
in memory and written into the row once it exists."""

from __future__ import annotations

import json

from support import button, dm

from bot.bootstrap import Runtime

QUESTION = "why does my lower back hurt after running?"
NOTICE = "I'm not for emergencies"  # the first-message notice (an answer says "not medical advice" too)


async def test_questions_store_nothing_and_the_notice_is_shown_once_from_memory(runtime: Runtime) -> None:
    first = await runtime.engine.handle(dm(QUESTION, user="asker"))
    second = await runtime.engine.handle(dm(QUESTION, user="asker"))
    assert any(NOTICE in r.text for r in first.replies)
    assert not any(NOTICE in r.text for r in second.replies)  # remembered without a row
    assert await runtime.store.find_user("test", "asker") is None


async def test_agreeing_creates_the_row_and_the_notice_seen_before_is_recorded_in_it(runtime: Runtime) -> None:
    await runtime.engine.handle(dm(QUESTION, user="agrees"))
    asked = await runtime.engine.handle(dm("/triage", user="agrees"))
    assert asked.kind == "consent" and await runtime.store.find_user("test", "agrees") is None
    yes = next(c for r in asked.replies for c in r.choices if button(c.payload, "consent", "yes"))
    started = await runtime.engine.handle(dm(yes.label, user="agrees", choice=yes.payload))
    assert started.kind == "triage"
    user = await runtime.store.find_user("test", "agrees")
    assert user is not None and await runtime.store.consent_of(user) is not None
    assert await runtime.store.get_triage(user) is not None
    later = await runtime.engine.handle(dm("/cancel", user="agrees"))
    assert not any(NOTICE in r.text for r in later.replies)
    user = await runtime.store.find_user("test", "agrees")
    assert user is not None and user.notice_shown  # the notice seen before the row existed, now recorded in it


async def test_a_setting_creates_the_row_and_the_default_creates_none(runtime: Runtime) -> None:
    await runtime.engine.handle(dm("/followups on", user="default"))
    assert await runtime.store.find_user("test", "default") is None  # on is what a new row would say anyway
    await runtime.engine.handle(dm("/followups off", user="opted-out"))
    user = await runtime.store.find_user("test", "opted-out")
    assert user is not None and not user.followups_enabled
    status = await runtime.engine.handle(dm("/followups", user="opted-out"))
    assert "Check-ins are off" in status.replies[-1].text


async def test_mydata_without_a_row_says_nothing_is_stored(runtime: Runtime) -> None:
    await runtime.engine.handle(dm(QUESTION, user="curious"))
    out = await runtime.engine.handle(dm("/mydata", user="curious"))
    reply = out.replies[-1]
    assert "I don't store anything about you" in reply.text and reply.attachment is not None
    assert json.loads(reply.attachment.data) == {
        "user": None, "triage": None, "escalations": [], "followups": [], "unanswered": [], "consent": None,
    }
    assert await runtime.store.find_user("test", "curious") is None
