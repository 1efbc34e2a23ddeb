"""Consent before health data (issue 16) through the real discord.py and python-telegram-bot clients against the fake
servers on 127.0.0.1: the question comes first and privately, "No thanks" stores nothing and still completes a check,
a new consent version asks again, withdrawal leaves no health rows and no pending check-ins, and /mydata's JSON
arrives as a Discord attachment and a Telegram document holding every row tied to the user. A question and a red flag
store nothing about the runner: no user row, on all three surfaces."""

# ruff: noqa: F811  (the other adapter tests' fixtures are imported by name, as pytest finds them)

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from support import ROOT, button

from bot.adapters.console import CONSOLE_USER
from bot.bootstrap import Runtime
from bot.core.consent_text import ConsentText
from bot.storage.sqlite import SQLiteStore
from tests.adapters.fake_discord import Sent
from tests.adapters.fake_telegram import JSON, FakeBotAPI

# one ``runtime`` fixture (a real engine on a SQLite file in tmp_path) serves both platforms' fixtures here
from tests.adapters.test_discord import Env, _next_call, _no_or_first, env, runtime  # noqa: F401  (fixtures)
from tests.adapters.test_telegram import (  # noqa: F401  (fixtures)
    USER,
    RecordingEngine,
    _path_to,
    _payloads,
    _private_press,
    _private_turn,
    adapter,
    clock,
    engine,
    knowledge,
)

HEALTH = ("triage_state", "followups", "escalations", "unanswered", "consents")
RED_FLAG = "my back hurts and I've lost control of my bladder"


async def health_rows(store: SQLiteStore, platform: str, user_id: str) -> dict[str, int]:
    await store.flush()
    user = await store.find_user(platform, user_id)
    out = {}
    for table in HEALTH:
        async with store.db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (user.id if user else -1,)
        ) as cur:
            out[table] = int((await cur.fetchone())[0])  # type: ignore[index]
    return out


# ---------------------------------------------------------------------------- Discord
def _button(sent: list[Sent], kind: str, *fields: str) -> tuple[Sent, str]:
    for s in sent:
        for b in s.buttons:
            if button(str(b["custom_id"]), kind, *fields):
                return s, str(b["custom_id"])
    raise AssertionError(f"no {kind}:{':'.join(fields)} button in {[s.content[:40] for s in sent]}")


async def _click(env: Env, message: Sent, custom_id: str) -> tuple[Any, list[Sent]]:
    calls, mark = len(env.engine.calls), env.fake.mark()
    await env.fake.click(env.alice, message, custom_id)
    _, outcome = await _next_call(env, calls + 1)
    return outcome, await env.fake.wait_sent(len(outcome.replies), since=mark)


async def test_discord_no_stores_nothing_and_completes_the_check(env: Env, runtime: Runtime) -> None:
    who = str(env.alice.id)
    await env.fake.slash(env.alice, "triage", channel_id=env.channel)
    _, outcome = await _next_call(env, 1)
    sent = await env.fake.wait_sent(len(outcome.replies))
    assert outcome.kind == "consent" and all(s.private for s in sent), "asked privately (ephemeral)"
    assert not any((await health_rows(runtime.store, "discord", who)).values())
    outcome, sent = await _click(env, *_button(sent, "consent", "no"))
    assert outcome.kind == "triage" and "won't store anything" in sent[0].content
    for _ in range(20):
        step = next((s for s in reversed(sent) if any(button(b["custom_id"], "tri") for b in s.buttons)), None)
        if step is None:
            break
        outcome, sent = await _click(env, step, _no_or_first(step))
        assert not any((await health_rows(runtime.store, "discord", who)).values())
    else:
        raise AssertionError("the check did not end")
    assert outcome.kind == "triage"
    assert not any(button(str(b["custom_id"]), "fu", "yes") for s in sent for b in s.buttons), "no check-ins"


async def test_discord_mydata_is_an_attachment_and_withdrawal_deletes(env: Env, runtime: Runtime) -> None:
    who = str(env.alice.id)
    sent = await env.ask_dm(env.alice, "/consent")
    outcome, _ = await _click(env, *_button(sent, "consent", "yes"))
    assert "version 1" in outcome.replies[0].text
    await env.ask_dm(env.alice, RED_FLAG)
    await env.ask_dm(env.alice, "/triage")  # consented: stored, left half-way
    rows = await health_rows(runtime.store, "discord", who)
    assert rows["consents"] == rows["triage_state"] == 1
    mark = env.fake.mark()
    await env.fake.slash(env.alice, "mydata", channel_id=env.channel)
    replies = await env.fake.wait_sent(1, since=mark)
    assert all(s.ephemeral for s in replies)
    await env.fake.wait_until(lambda: bool(env.fake.uploads))
    [(path, filename, data)] = env.fake.uploads
    assert filename == "runbot-mydata.json" and "/webhooks/" in path  # the interaction's (ephemeral) follow-up
    exported = json.loads(data)
    assert exported["user"]["platform_user_id"] == who
    assert exported["consent"]["version"] == "1" and exported["triage"] is not None
    assert len(exported["escalations"]) == (await health_rows(runtime.store, "discord", who))["escalations"]
    sent = await env.ask_dm(env.alice, "/consent")
    await _click(env, *_button(sent, "cmd", "consent", "withdraw"))
    assert not any((await health_rows(runtime.store, "discord", who)).values())


# ---------------------------------------------------------------------------- Telegram
def _with(messages: list[JSON], kind: str, *fields: str) -> tuple[JSON, str]:
    for m in messages:
        for p in _payloads(m):
            if button(p, kind, *fields):
                return m, p
    raise AssertionError(f"no {kind}:{':'.join(fields)} button")


async def test_telegram_yes_then_new_version_then_withdraw(
    api: FakeBotAPI, adapter: Any, engine: RecordingEngine, runtime: Runtime
) -> None:
    rt = runtime
    who = str(USER)
    sent = await _private_turn(api, engine, USER, "/triage")
    assert engine.last[1].kind == "consent"
    assert not any((await health_rows(rt.store, "telegram", who)).values())
    sent = await _private_press(api, engine, USER, *_with(sent, "consent", "yes"))
    assert engine.last[1].kind == "triage"
    flow = rt.knowledge.current.triage
    path = _path_to(flow, lambda o: o.followup and o.disposition in ("self-care", "see-professional"))
    sent = await _private_press(api, engine, USER, sent[-1], path[0])
    # the consent text changes (a reload): the next stored answer waits for a new yes
    k = rt.knowledge.current
    rt.knowledge.swap(dataclasses.replace(k, consent=ConsentText("2", k.consent.text + " Also X.")))
    sent = await _private_press(api, engine, USER, sent[-1], path[1])
    assert engine.last[1].kind == "consent" and "version 2" in sent[0]["text"]
    sent = await _private_press(api, engine, USER, *_with(sent, "consent", "yes"))
    for payload in path[1:]:
        sent = await _private_press(api, engine, USER, sent[-1], payload)
    offer, yes = _with(sent, "fu", "yes")
    await _private_press(api, engine, USER, offer, yes)
    assert engine.last[1].kind == "followup"
    rows = await health_rows(rt.store, "telegram", who)
    assert rows["followups"] == 1 and rows["consents"] == 1
    async with rt.store.db.execute("SELECT version FROM consents") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["2"]

    await _private_turn(api, engine, USER, "/mydata")
    await api.wait_for(lambda: bool(api.documents))
    [doc] = api.documents
    assert doc["chat_id"] == USER and doc["filename"] == "runbot-mydata.json"
    exported = json.loads(doc["data"])
    assert exported["consent"]["version"] == "2" and len(exported["followups"]) == 1
    assert exported["followups"][0]["state"] == "pending"

    sent = await _private_turn(api, engine, USER, "/consent")
    await _private_press(api, engine, USER, *_with(sent, "cmd", "consent", "withdraw"))
    assert not any((await health_rows(rt.store, "telegram", who)).values())
    assert await rt.store.list_followups() == [], "no pending check-ins"


async def test_telegram_no_completes_the_check_from_memory(
    api: FakeBotAPI, adapter: Any, engine: RecordingEngine, runtime: Runtime
) -> None:
    sent = await _private_turn(api, engine, USER, "/triage")
    sent = await _private_press(api, engine, USER, *_with(sent, "consent", "no"))
    assert engine.last[1].kind == "triage"
    flow = runtime.knowledge.current.triage
    for payload in _path_to(flow, lambda o: o.followup and o.disposition == "self-care"):
        sent = await _private_press(api, engine, USER, sent[-1], payload)
        assert not any((await health_rows(runtime.store, "telegram", str(USER))).values())
    assert engine.last[1].kind == "triage"
    assert not any(button(p, "fu") for m in sent for p in _payloads(m)), "no check-ins after a no"


# ---------------------------------------------------------------------------- nothing stored without need
QUESTION = "why does my lower back hurt after running?"


async def _nothing_stored_about(store: SQLiteStore, platform: str, user_id: str) -> None:
    """No row of any kind about the runner; the red flag is in the safety log with level, category and time only."""
    assert await store.find_user(platform, user_id) is None
    async with store.db.execute("SELECT COUNT(*) FROM users WHERE platform_user_id = ?", (user_id,)) as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
    async with store.db.execute("SELECT level, user_id FROM escalations") as cur:
        assert [tuple(r) for r in await cur.fetchall()] == [("emergency", None)]


async def test_discord_a_question_and_a_red_flag_leave_no_user_row(env: Env, runtime: Runtime) -> None:
    answered = await env.ask_dm(env.alice, QUESTION)
    assert any("Bottom line" in s.content for s in answered)
    warned = await env.ask_dm(env.alice, RED_FLAG)
    assert any("999" in s.content for s in warned)
    await runtime.engine.bookkeeper.drain(5)  # the escalation's bookkeeping has run
    await _nothing_stored_about(runtime.store, "discord", str(env.alice.id))


async def test_telegram_a_question_and_a_red_flag_leave_no_user_row(
    api: FakeBotAPI, adapter: Any, engine: RecordingEngine, runtime: Runtime
) -> None:
    answered = await _private_turn(api, engine, USER, QUESTION)
    assert engine.last[1].kind == "answer" and answered
    warned = await _private_turn(api, engine, USER, RED_FLAG)
    assert engine.last[1].kind == "escalation" and any("999" in m["text"] for m in warned)
    await runtime.engine.bookkeeper.drain(5)
    await _nothing_stored_about(runtime.store, "telegram", str(USER))


async def test_console_a_question_and_a_red_flag_leave_no_user_row(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        env.pop(name, None)
    chat = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat", "--db", str(db), cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(chat.communicate(f"{QUESTION}\n{RED_FLAG}\n".encode()), 120)
    assert chat.returncode == 0, err.decode()[-2000:]
    assert "Bottom line" in out.decode() and "999" in out.decode()
    async with SQLiteStore(db) as store:
        await _nothing_stored_about(store, "console", CONSOLE_USER)
