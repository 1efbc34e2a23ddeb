"""Moderators edit the FAQ from Discord (issue 17), through the real discord.py client against the fake Discord: the
review queue's one click, the entry modal (only that entry's lines change), a refused edit, undo byte for byte, the
"New entry" and "Another entry…" forms, and private refusals for members without the moderator role."""

from __future__ import annotations

import difflib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import KNOWLEDGE

from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings
from bot.adapters.discord_faq_ui import NOT_A_MODERATOR, DiscordFaqForms
from bot.bootstrap import Runtime, build
from bot.config import RateLimitSettings, Settings
from bot.core.engine import EngineOptions
from bot.core.ports import ManualClock
from tests.adapters.fake_discord import FakeDiscord, FakeGuild, FakeUser, Sent

TOKEN = "fake-token.abc.def"
TAPE = "is kinesiology tape worth it for my back"


@dataclass
class Env:
    fake: FakeDiscord
    runtime: Runtime
    folder: Path
    guild: FakeGuild
    mod: FakeUser
    alice: FakeUser
    errors: list[tuple[str, BaseException]]
    adapter_forms: DiscordFaqForms | None = None

    @property
    def channel(self) -> int:
        return self.guild.channel_ids[0]

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    async def command(self, user: FakeUser, sub: str, **options: str) -> list[Sent]:
        """Run /faq SUB in the server channel; the answers (after the deferral) the bot sent."""
        mark = self.fake.mark()
        await self.fake.slash(user, "faq", channel_id=self.channel, subcommand=sub, options=options)
        return await self.fake.wait_sent(1, since=mark, within=15)

    async def click(self, user: FakeUser, message: Sent, label: str, count: int = 1) -> list[Sent]:
        payload = next(b["custom_id"] for b in message.buttons if b["label"] == label)
        mark = self.fake.mark()
        await self.fake.click(user, message, payload)
        return await self.fake.wait_sent(count, since=mark, within=15)

    async def dm(self, user: FakeUser, text: str) -> Sent:
        mark = self.fake.mark()
        await self.fake.message(user, text)
        return (await self.fake.wait_sent(1, since=mark, within=10))[-1]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder, ignore=shutil.ignore_patterns("README.md"))
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    rt = build(settings, clock=ManualClock(), knowledge_path=folder, db_path=tmp_path / "runbot.db",
               options=EngineOptions(first_notice=False))
    async with rt, FakeDiscord() as fake:
        guild = fake.add_guild()
        mod = fake.add_user("mona", roles=(guild.role_ids[0],))
        alice = fake.add_user("alice")
        errors: list[tuple[str, BaseException]] = []
        with fake.patch():
            adapter = DiscordAdapter(
                rt.engine, DiscordAdapterSettings(guild_ids=(guild.id,), moderator_role_ids=guild.role_ids[:1]),
                TOKEN, on_error=lambda event, exc: errors.append((event, exc)), guild_ready_timeout=0,
                moderation=rt.moderation,
            )
            await adapter.start()
            rt.add_adapter(adapter)
            try:
                yield Env(fake, rt, folder, guild, mod, alice, errors, adapter.faq_forms)
            finally:
                await adapter.stop()
        assert fake.unhandled == [] and errors == []


def only_lines_of(before: bytes, after: bytes, first: int, last: int) -> bool:
    """Every difference between the two files lies within lines first..last (1-based) of ``before``."""
    a, b = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal" and not (first - 1 <= i1 and i2 <= last):
            return False
    return True


def entry_block(env: Env, entry_id: str) -> tuple[int, int]:
    """The 1-based first and last line of an entry in its file (up to the next entry)."""
    k = env.runtime.knowledge.current
    entry = k.entries[entry_id]
    later = sorted(e.line for e in k.entries.values() if e.file == entry.file and e.line > entry.line)
    return entry.line, (later[0] - 1 if later else 10**6)


@pytest.mark.slow
async def test_a_moderator_maps_an_unanswered_question_with_one_click_and_undo_restores_the_file(env: Env) -> None:
    fallback = await env.dm(env.alice, TAPE)
    assert "kinesiology" not in fallback.content.lower()
    card = (await env.command(env.mod, "review"))[0]
    assert card.ephemeral and TAPE in card.content and "alice" not in card.content
    label = next(b["label"] for b in card.buttons if b["label"].startswith("Add to: "))
    entry = next(e for e in env.runtime.knowledge.current.entries.values() if e.title == label[len("Add to: "):])
    before = env.read(entry.file)

    done = await env.click(env.mod, card, label, count=2)  # the result and the next card
    assert done[0].content.startswith("✅ #1") and all(s.ephemeral for s in done), [s.content for s in done]
    answer = await env.dm(env.fake.add_user("bob"), TAPE)  # the next runner asking gets the entry's answer
    assert answer.content.startswith(f"**{entry.title}**") or entry.title in answer.content, answer.content
    assert env.read(entry.file) != before

    undone = await env.click(env.mod, done[0], "Undo")
    assert undone[0].content.startswith("✅ #2: Undid #1") and undone[0].ephemeral
    assert env.read(entry.file) == before


@pytest.mark.slow
async def test_the_edit_modal_changes_only_that_entry_and_a_refused_edit_leaves_the_file_alone(env: Env) -> None:
    entry = env.runtime.knowledge.current.entries["overstriding"]
    before = env.read(entry.file)
    first, last = entry_block(env, "overstriding")

    seen = len(env.fake.modals)
    await env.fake.slash(env.mod, "faq", channel_id=env.channel, subcommand="edit", options={"entry": "overstriding"})
    modal = await env.fake.wait_modal(seen)
    values = {c["custom_id"]: c.get("value") for row in modal["components"] for c in row["components"]}
    assert values["title"] == entry.title and values["questions"].splitlines() == list(entry.questions)
    assert values["answer"] == entry.answer.strip() and values["source"] == entry.source

    refused_at = env.fake.mark()  # a phrasing that belongs to another entry: refused with the reason
    colliding = values["questions"] + "\nwhy does my lower back hurt after running"
    await env.fake.submit_modal(env.mod, modal, {"questions": colliding})
    refused = (await env.fake.wait_sent(1, since=refused_at, within=15))[0]
    assert refused.ephemeral and refused.content.startswith("❌ Not changed"), refused.content
    assert "back-pain-causes" in refused.content
    assert env.read(entry.file) == before

    seen = len(env.fake.modals)
    await env.fake.slash(env.mod, "faq", channel_id=env.channel, subcommand="edit", options={"entry": "overstriding"})
    modal = await env.fake.wait_modal(seen)
    mark = env.fake.mark()
    await env.fake.submit_modal(env.mod, modal, {
        "title": "Overstriding & cadence",
        "questions": values["questions"] + "\nshould my steps be shorter and quicker",
        "answer": "Shorter, quicker steps are a low-risk thing to try.\nBuild the change up over a few weeks.",
    })
    done = (await env.fake.wait_sent(1, since=mark, within=15))[0]
    assert done.ephemeral and done.content.startswith("✅"), done.content
    after = env.read(entry.file)
    assert after != before and only_lines_of(before, after, first, last)
    new = env.runtime.knowledge.current.entries["overstriding"]
    assert new.title == "Overstriding & cadence" and new.questions[-1] == "should my steps be shorter and quicker"
    assert new.source == entry.source and new.examples == entry.examples


@pytest.mark.slow
async def test_new_entry_and_another_entry_forms_from_the_review_queue(env: Env) -> None:
    await env.dm(env.alice, TAPE)
    await env.dm(env.alice, "my friend says pickle juice cures cramp, true?")
    card = (await env.command(env.mod, "review"))[0]
    if TAPE not in card.content:
        card = (await env.click(env.mod, card, "Skip"))[0]
    new_button = next(b["custom_id"] for b in card.buttons if b["label"] == "New entry")
    seen = len(env.fake.modals)
    await env.fake.click(env.mod, card, new_button)
    modal = await env.fake.wait_modal(seen)
    prefilled = {c["custom_id"]: c.get("value") for row in modal["components"] for c in row["components"]}
    assert prefilled["questions"] == TAPE and modal["title"] == "New FAQ entry"
    mark = env.fake.mark()
    await env.fake.submit_modal(env.mod, modal, {
        "title": "Kinesiology tape", "questions": f"{TAPE}\ndoes taping my lower back help\nk tape for back",
        "answer": "There is little good evidence that tape helps lower back pain.",
        "source": "NICE NG59 Low back pain and sciatica in over 16s (https://www.nice.org.uk/guidance/ng59)",
    })
    done = (await env.fake.wait_sent(1, since=mark, within=15))[0]
    assert done.ephemeral and done.content.startswith("✅") and "kinesiology-tape" in done.content, done.content
    assert "Kinesiology tape" in (await env.dm(env.fake.add_user("bob"), "does taping my lower back help")).content

    card = (await env.command(env.mod, "review"))[0]  # the pickle juice question is left
    other = next(b["custom_id"] for b in card.buttons if b["label"] == "Another entry…")
    seen = len(env.fake.modals)
    await env.fake.click(env.mod, card, other)
    search = await env.fake.wait_modal(seen)
    mark = env.fake.mark()
    await env.fake.submit_modal(env.mod, search, {"query": "physiotherapy"})
    found = (await env.fake.wait_sent(1, since=mark, within=15))[0]
    assert found.ephemeral and any("(physiotherapy)" in b["label"] for b in found.buttons), found.buttons


@pytest.mark.slow
async def test_members_without_the_moderator_role_get_a_private_refusal(env: Env) -> None:
    await env.dm(env.alice, TAPE)
    for sub, options in (("review", {}), ("phrase", {"entry": "overstriding", "text": "a b c"}), ("undo", {})):
        refusal = await env.command(env.alice, sub, **options)
        assert [(s.content, s.ephemeral) for s in refusal] == [(NOT_A_MODERATOR, True)]
    before = {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")}
    for sub, options in (("add", {}), ("edit", {"entry": "overstriding"})):
        refusal = await env.command(env.alice, sub, **options)
        assert [(s.content, s.ephemeral) for s in refusal] == [(NOT_A_MODERATOR, True)]
    card = (await env.command(env.mod, "review"))[0]
    for label in ("New entry", "Another entry…", "Not for the bot"):  # pressed on a moderator's card
        refusal = await env.click(env.alice, card, label)
        assert refusal[-1].ephemeral and "moderators" in refusal[-1].content, refusal[-1].content
    assert env.fake.modals == []
    assert {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")} == before
    assert "pickle" not in card.content  # nothing but the moderator's own card was asked for


@pytest.mark.slow
async def test_a_value_longer_than_a_form_box_is_left_out_and_kept_not_cut(env: Env) -> None:
    from bot.adapters.discord_faq_ui import INPUT_LIMIT, EntryModal
    from bot.core.moderation import Form

    long_questions = tuple(f"a rather long way of asking question number {i} about my lower back" for i in range(80))
    form = Form("overstriding", "Overstriding", long_questions, "x" * (INPUT_LIMIT + 1), "NHS")
    assert env.runtime.moderation is not None and env.adapter_forms is not None
    modal = EntryModal(env.adapter_forms, form)
    assert modal.questions.default is None and modal.answer.default is None  # not cut to fit
    assert not modal.questions.required and not modal.answer.required
    fields = modal.fields()  # left empty: kept as they are
    assert fields.questions is None and fields.answer is None
