"""Moderators edit the FAQ from Telegram (issue 17), through the real python-telegram-bot client against the fake Bot
API: the review queue's one click, the guided conversation in the private chat (only that entry's lines change), a
refused edit, undo byte for byte, a new entry from the queue, and private refusals for everyone else."""

from __future__ import annotations

import difflib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import KNOWLEDGE

from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.bootstrap import Runtime, build
from bot.config import RateLimitSettings, Settings
from bot.core.engine import EngineOptions
from bot.core.moderation import NOT_A_MODERATOR
from bot.core.ports import ManualClock
from tests.adapters.fake_telegram import FakeBotAPI

MOD, RUNNER, OUTSIDER = 8001, 8002, 8003
GROUP = -100555
TAPE = "is kinesiology tape worth it for my back"


@dataclass
class Env:
    api: FakeBotAPI
    runtime: Runtime
    folder: Path

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    async def say(self, user: int, text: str, *, count: int = 1, chat: int | None = None) -> list[dict[str, Any]]:
        """Send ``text`` (privately unless ``chat``) and return the next ``count`` messages to the user's chat."""
        before = len(self.api.sent(user))
        if chat is None:
            await self.api.send_text(user_id=user, text=text)
        else:
            await self.api.send_text(user_id=user, chat_id=chat, chat_type="supergroup", text=text)
        await self.api.wait_for(lambda: len(self.api.sent(user)) >= before + count, within=15)
        return self.api.sent(user)[before:before + count]

    async def press(self, user: int, message: dict[str, Any], label: str, *, count: int = 1) -> list[dict[str, Any]]:
        data = buttons(message)[label]
        before = len(self.api.sent(user))
        await self.api.press(user_id=user, message=message, data=data)
        await self.api.wait_for(lambda: len(self.api.sent(user)) >= before + count, within=15)
        return self.api.sent(user)[before:before + count]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    markup = message.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


@pytest.fixture
async def env(tmp_path: Path, api: FakeBotAPI) -> AsyncIterator[Env]:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder, ignore=shutil.ignore_patterns("README.md"))
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    rt = build(settings, clock=ManualClock(), knowledge_path=folder, db_path=tmp_path / "runbot.db",
               options=EngineOptions(first_notice=False))
    async with rt:
        adapter = TelegramAdapter(
            rt.engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}", moderator_user_ids=(MOD,)),
            api.token, moderation=rt.moderation,
        )
        await adapter.start()
        try:
            yield Env(api, rt, folder)
        finally:
            await adapter.stop()
    assert api.unknown == []


def only_lines_of(before: bytes, after: bytes, first: int, last: int) -> bool:
    """Every difference between the two files lies within lines first..last (1-based) of ``before``."""
    a, b = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    return all(tag == "equal" or (first - 1 <= i1 and i2 <= last)
               for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes())


@pytest.mark.slow
async def test_a_moderator_maps_an_unanswered_question_with_one_click_and_undo_restores_the_file(env: Env) -> None:
    await env.say(RUNNER, TAPE)
    card = (await env.say(MOD, "/faq review"))[0]
    assert TAPE in card["text"] and str(RUNNER) not in card["text"]
    label = next(b for b in buttons(card) if b.startswith("Add to: "))
    entry = next(e for e in env.runtime.knowledge.current.entries.values() if e.title == label[len("Add to: "):])
    before = env.read(entry.file)

    done = (await env.press(MOD, card, label, count=2))[0]  # the result, then the next card
    assert done["text"].startswith("✅ #1"), done["text"]
    answer = (await env.say(RUNNER + 10, TAPE))[0]  # the next runner asking gets the entry's answer
    assert entry.title in answer["text"], answer["text"]

    undone = (await env.press(MOD, done, "Undo"))[0]
    assert undone["text"].startswith("✅ #2: Undid #1"), undone["text"]
    assert env.read(entry.file) == before


@pytest.mark.slow
async def test_the_conversation_edits_only_that_entry_and_a_refused_edit_leaves_the_file_alone(env: Env) -> None:
    k = env.runtime.knowledge.current
    entry = k.entries["overstriding"]
    later = sorted(e.line for e in k.entries.values() if e.file == entry.file and e.line > entry.line)
    before = env.read(entry.file)
    summary = (await env.say(MOD, "/faq edit overstriding"))[0]
    assert "Editing 'overstriding'" in summary["text"] and entry.title in summary["text"]

    ask = (await env.press(MOD, summary, "Change the phrasings"))[0]
    assert "one per line" in ask["text"]
    colliding = "\n".join([*entry.questions, "why does my lower back hurt after running"])
    summary = (await env.say(MOD, colliding))[0]
    refused, summary = await env.press(MOD, summary, "Save", count=2)
    assert refused["text"].startswith("❌ Not changed") and "back-pain-causes" in refused["text"], refused["text"]
    assert env.read(entry.file) == before

    await env.press(MOD, summary, "Change the phrasings")
    summary = (await env.say(MOD, "\n".join([*entry.questions, "should my steps be shorter and quicker"])))[0]
    await env.press(MOD, summary, "Change the title")
    summary = (await env.say(MOD, "Overstriding & cadence"))[0]
    assert "Title: Overstriding & cadence" in summary["text"]
    done = (await env.press(MOD, summary, "Save"))[0]
    assert done["text"].startswith("✅"), done["text"]
    after = env.read(entry.file)
    assert after != before and only_lines_of(before, after, entry.line, later[0] - 1 if later else 10**6)
    new = env.runtime.knowledge.current.entries["overstriding"]
    assert new.title == "Overstriding & cadence" and new.questions[-1] == "should my steps be shorter and quicker"
    assert new.answer == entry.answer and new.source == entry.source


@pytest.mark.slow
async def test_a_new_entry_from_the_review_queue_by_conversation(env: Env) -> None:
    await env.say(RUNNER, TAPE)
    card = (await env.say(MOD, "/faq review"))[0]
    intro, ask = await env.press(MOD, card, "New entry", count=2)
    assert TAPE in intro["text"] and "title" in ask["text"]
    ask = (await env.say(MOD, "Kinesiology tape"))[0]
    assert "Done" in buttons(ask)
    await env.say(MOD, "does taping my lower back help\nk tape for back")
    # an answer naming warning signs is a moderator's text, never read as a runner's red flag
    ask = (await env.say(MOD, "There is little good evidence that tape helps lower back pain. Numbness around your "
                              "genitals or bottom is different: call {emergency_number} now."))[0]
    assert "Skip" in buttons(ask), ask["text"]
    summary = (await env.press(MOD, ask, "Skip"))[0]
    assert f"• {TAPE}" in summary["text"] and "• k tape for back" in summary["text"]
    done = (await env.press(MOD, summary, "Save"))[0]
    assert done["text"].startswith("✅") and "kinesiology-tape" in done["text"], done["text"]
    assert "Kinesiology tape" in (await env.say(RUNNER, "does taping my lower back help"))[0]["text"]
    assert not any("999" in m["text"] or "emergency" in m["text"].lower() for m in env.api.sent(MOD)
                   if "Numbness" not in m["text"])


@pytest.mark.slow
async def test_everyone_else_gets_a_private_refusal(env: Env) -> None:
    await env.say(RUNNER, TAPE)
    card = (await env.say(MOD, "/faq review"))[0]
    before = {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")}
    in_group = len(env.api.sent(GROUP))
    for text in ("/faq add", "/faq edit overstriding", "/faq review", '/faq phrase overstriding "a b c"'):
        refusal = (await env.say(OUTSIDER, text, chat=GROUP))[0]
        assert refusal["text"] == NOT_A_MODERATOR and refusal["chat"]["id"] == OUTSIDER  # privately
    own = (await env.say(OUTSIDER, "/help"))[0]  # a message of the bot in the outsider's own chat, to press on
    for label in ("New entry", "Another entry…", next(b for b in buttons(card) if b.startswith("Add to: "))):
        before_count = len(env.api.sent(OUTSIDER))
        await env.api.press(user_id=OUTSIDER, message=own, data=buttons(card)[label])  # a forged press
        await env.api.wait_for(lambda n=before_count: len(env.api.sent(OUTSIDER)) > n, within=15)
        assert env.api.sent(OUTSIDER)[-1]["text"] == NOT_A_MODERATOR
    assert {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")} == before
    assert all(m["text"] != NOT_A_MODERATOR for m in env.api.sent(GROUP)[in_group:])
    reply = (await env.say(OUTSIDER, "Kinesiology tape"))[0]  # no conversation was started for them
    assert "Phrasings" not in reply["text"]
