"""Moderators change the FAQ from the chat (issue 17), through the real engine, a SQLite file and a copy of the
shipped knowledge: the review queue, /faq phrase and remove-phrase, the form path (add and edit), the check that
refuses a bad change, history, undo byte for byte, git commits, and the refusals for everyone else."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import KNOWLEDGE

from bot.bootstrap import Runtime, build
from bot.config import RateLimitSettings, Settings
from bot.core.engine import EngineOptions
from bot.core.faq_editing import EntryFields, Moderator, editable
from bot.core.faq_yaml import load_round_trip
from bot.core.messages import IncomingMessage, Outcome
from bot.core.moderation import ModeratorDesk
from bot.core.ports import ManualClock

#: the shipped knowledge does not answer these (they are logged for the moderators)
TAPE = "is kinesiology tape worth it for my back"
CHATTY = "my friend says pickle juice cures cramp, true?"


@dataclass
class Env:
    runtime: Runtime
    folder: Path

    @property
    def desk(self) -> ModeratorDesk:
        assert self.runtime.moderation is not None
        return self.runtime.moderation

    async def say(self, text: str, *, user: str = "mod1", moderator: bool = True, private: bool = True) -> Outcome:
        msg = IncomingMessage("test", user, f"chat-{user}" if private else "club", text=text, is_private=private,
                              display_name=user.title(), is_moderator=moderator)
        return await self.runtime.engine.handle(msg)

    async def press(self, payload: str, *, user: str = "mod1", moderator: bool = True, private: bool = True
                    ) -> Outcome:
        msg = IncomingMessage("test", user, f"chat-{user}" if private else "club", choice=payload,
                              is_private=private, display_name=user.title(), is_moderator=moderator)
        return await self.runtime.engine.handle(msg)

    async def ask(self, text: str, user: str = "runner") -> Outcome:
        return await self.say(text, user=user, moderator=False)

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


def knowledge_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    folder = knowledge_copy(tmp_path)
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    rt = build(settings, clock=ManualClock(), knowledge_path=folder, db_path=tmp_path / "runbot.db",
               options=EngineOptions(first_notice=False))
    async with rt:
        yield Env(rt, folder)


def entry_lines(text: str, entry_id: str) -> range:
    """The 0-based line numbers of one entry's block in an FAQ file."""
    entries = load_round_trip(text)["entries"]
    ids = [e["id"] for e in entries]
    i = ids.index(entry_id)
    end = entries.lc.item(i + 1)[0] if i + 1 < len(ids) else len(text.splitlines())
    return range(entries.lc.item(i)[0], end)


def changed_lines(before: bytes, after: bytes) -> set[int]:
    """The lines of ``before`` that were replaced or removed, and the places lines were inserted at."""
    a, b = before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    out: set[int] = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            out.update(range(i1, max(i2, i1 + 1)) if tag != "insert" else {i1 - 1})
    return out


def buttons(out: Outcome) -> dict[str, str]:
    return {c.label: c.payload for r in out.replies for c in r.choices}


@pytest.mark.slow
async def test_one_click_maps_an_unanswered_question_and_the_next_asker_gets_the_answer(env: Env) -> None:
    assert (await env.ask(TAPE)).kind == "fallback"
    await env.ask(TAPE, user="runner2")
    card = await env.say("/faq review")
    text = card.replies[0].text
    assert TAPE in text and "asked 2 time(s)" in text and "runner" not in text  # counts and wording, nobody's id
    adds = {label: p for label, p in buttons(card).items() if label.startswith("Add to: ")}
    assert len(adds) == 3 and {"Another entry…", "New entry", "Not for the bot", "Skip"} <= set(buttons(card))
    label, payload = next(iter(adds.items()))
    entry = next(e for e in env.runtime.knowledge.current.entries.values() if e.title == label[len("Add to: "):])
    before = env.read(entry.file)

    done = await env.press(payload)  # the one click
    assert done.replies[0].text.startswith("✅ #1: Added the phrasing"), done.replies[0].text
    assert changed_lines(before, env.read(entry.file)) <= set(entry_lines(before.decode(), entry.id))
    answered = await env.ask(TAPE, user="someone-new")
    assert (answered.kind, answered.faq_id) == ("answer", entry.id)
    assert TAPE not in (await env.say("/faq review")).replies[0].text  # answered now: gone from the queue


@pytest.mark.slow
async def test_phrase_and_remove_phrase_change_one_line_and_undo_restores_the_file_byte_for_byte(env: Env) -> None:
    before = env.read("faq-causes.yaml")
    added = await env.say('/faq phrase overstriding "should my steps be shorter and quicker"')
    assert added.replies[0].text.startswith("✅"), added.replies[0].text
    after = env.read("faq-causes.yaml")
    diff = [line for line in difflib.ndiff(before.decode().splitlines(), after.decode().splitlines())
            if line[:1] in "+-"]
    assert diff == ["+       - should my steps be shorter and quicker"]
    removed = await env.say("/faq remove-phrase overstriding 1")  # "am i overstriding", as /faq show numbers it
    assert "am i overstriding" in removed.replies[0].text and removed.replies[0].text.startswith("✅")
    assert b"- am i overstriding\n" not in env.read("faq-causes.yaml")

    assert (await env.say("/faq undo")).replies[0].text.startswith("✅")
    assert env.read("faq-causes.yaml") == after
    assert (await env.say("/faq undo")).replies[0].text.startswith("✅")
    assert env.read("faq-causes.yaml") == before
    assert (await env.say("/faq undo")).replies[0].text == "You have no change to undo."
    history = (await env.say("/faq history overstriding")).replies[0].text
    assert "#1" in history and "(undone by #4)" in history and "(undone by #3)" in history


@pytest.mark.slow
async def test_a_colliding_phrasing_is_refused_with_the_reason_and_the_file_is_untouched(env: Env) -> None:
    before = {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")}
    out = await env.say('/faq phrase running-shoes "why does my lower back hurt after running"')
    text = out.replies[0].text
    assert text.startswith("❌ Not changed: the check found problems"), text
    assert "back-pain-causes" in text and "cannot tell these apart" in text  # the entry it collides with, and why
    assert {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")} == before
    assert (await env.ask("why does my lower back hurt after running")).faq_id == "back-pain-causes"
    assert "No changes" in (await env.say("/faq history")).replies[0].text


@pytest.mark.slow
async def test_a_change_that_breaks_an_example_is_refused(env: Env) -> None:
    entry = env.runtime.knowledge.current.entries["back-pain-causes"]
    example = entry.examples[0]
    before = env.read(entry.file)
    out = await env.say(f'/faq phrase prevention "{example}"')  # the example would now land on another entry
    assert out.replies[0].text.startswith("❌ Not changed"), out.replies[0].text
    assert example in out.replies[0].text
    assert env.read(entry.file) == before


@pytest.mark.slow
async def test_the_edit_form_changes_only_that_entrys_lines(env: Env) -> None:
    k = env.runtime.knowledge.current
    entry = k.entries["overstriding"]
    before = env.read(entry.file)
    msg = IncomingMessage("test", "mod1", "chat-mod1", display_name="Mo", is_moderator=True)
    fields = EntryFields(
        title="Overstriding & cadence",
        questions=(*entry.questions[1:], "should my steps be shorter and quicker"),
        answer="Shorter, quicker steps are a low-risk thing to try.\nBuild the change up over a few weeks.",
        source="NHS - Running tips for beginners (https://www.nhs.uk/live-well/exercise/running-and-aerobic-exercises/"
               "running-tips-for-beginners/)",
    )
    out = await env.desk.edit_entry(msg, "overstriding", fields)
    assert out[0].text.startswith("✅"), out[0].text
    after = env.read(entry.file)
    assert changed_lines(before, after) <= set(entry_lines(before.decode(), "overstriding"))
    new = env.runtime.knowledge.current.entries["overstriding"]
    assert (new.title, new.source) == (fields.title, fields.source)
    assert new.answer.strip() == fields.answer and new.questions == fields.questions
    assert new.keywords == entry.keywords and new.examples == entry.examples  # what the form does not show stays


@pytest.mark.slow
async def test_a_new_entry_from_the_review_queue_is_served_at_once(env: Env) -> None:
    await env.ask(TAPE)
    card = await env.say("/faq review")
    ref = buttons(card)["New entry"].split(":")[-1]
    assert await env.desk.question(ref) == TAPE  # what a form starts from
    before = env.read("faq-treatment.yaml")
    msg = IncomingMessage("test", "mod1", "chat-mod1", display_name="Mo", is_moderator=True)
    fields = EntryFields(title="Kinesiology tape",
                         questions=(TAPE, "does taping my lower back help", "k tape for back"),
                         answer="There is little good evidence that tape helps lower back pain.",
                         source="NICE NG59 Low back pain and sciatica in over 16s "
                                "(https://www.nice.org.uk/guidance/ng59)")
    out = await env.desk.add_entry(msg, fields)
    assert out[0].text.startswith("✅"), out[0].text
    k = env.runtime.knowledge.current
    assert "kinesiology-tape" in k.entries
    file = k.entries["kinesiology-tape"].file
    after = env.read(file)
    original = before if file == "faq-treatment.yaml" else (KNOWLEDGE / file).read_bytes()
    assert after.startswith(original)  # appended: every byte before it stays
    assert (await env.ask("does taping my lower back help", user="r9")).faq_id == "kinesiology-tape"
    again = await env.desk.add_entry(msg, fields)
    assert again[0].text.startswith("❌") and "already" in again[0].text


@pytest.mark.slow
async def test_not_for_the_bot_leaves_the_queue_and_can_go_to_chatter(env: Env) -> None:
    await env.ask(CHATTY)
    await env.ask(TAPE)
    card = await env.say("/faq review")
    if CHATTY not in card.replies[0].text:
        card = await env.press(buttons(card)["Skip"])
    phrasing = "my friend says pickle juice cures cramp true"  # as stored: normalised
    assert phrasing in card.replies[0].text
    ignored = await env.press(buttons(card)["Not for the bot"])
    assert "won't come up in the review again" in ignored.replies[0].text
    queue = " ".join(r.text for r in ignored.replies[1:])
    assert phrasing not in queue
    before = env.read("chatter.yaml")
    out = await env.press(buttons(ignored)["Add it to chatter.yaml"])
    assert out.replies[0].text.startswith("✅"), out.replies[0].text
    after = env.read("chatter.yaml")
    assert after.startswith(before.rstrip(b"\n")) and after.decode().rstrip().endswith(phrasing)
    assert phrasing not in (await env.say("/faq review")).replies[0].text


@pytest.mark.slow
async def test_everyone_else_gets_a_private_refusal(env: Env) -> None:
    await env.ask(TAPE)
    card = await env.say("/faq review")
    payload = next(p for label, p in buttons(card).items() if label.startswith("Add to: "))
    before = {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")}
    for out in (
        await env.say("/faq review", user="runner", moderator=False, private=False),
        await env.say('/faq phrase overstriding "x y z"', user="runner", moderator=False, private=False),
        await env.press(payload, user="runner", moderator=False, private=False),
        await env.press("mod:undo:1", user="runner", moderator=False, private=False),
    ):
        assert [(r.text, r.private) for r in out.replies] == [("Sorry, the /faq commands are for the club's "
                                                              "moderators.", True)]
    assert {f.name: f.read_bytes() for f in env.folder.glob("*.yaml")} == before
    # a moderator acting in a group channel is answered privately too
    assert all(r.private for r in (await env.say("/faq review", private=False)).replies)


@pytest.mark.slow
async def test_undo_waits_for_later_changes_to_the_same_file(env: Env) -> None:
    assert (await env.say('/faq phrase overstriding "should my steps be shorter and quicker"')).replies[0]
    second = await env.say('/faq phrase tight-hips-hamstrings "do tight hips pull on my lower back"', user="mod2")
    assert second.replies[0].text.startswith("✅"), second.replies[0].text
    refused = await env.say("/faq undo")
    assert "#2" in refused.replies[0].text and "undone first" in refused.replies[0].text, refused.replies[0].text
    assert (await env.say("/faq undo", user="mod2")).replies[0].text.startswith("✅")
    # a change made outside the chat since then is never overwritten
    path = env.folder / "faq-causes.yaml"
    path.write_bytes(path.read_bytes() + b"# a note added by hand\n")
    refused = await env.say("/faq undo")
    assert "changed outside the chat" in refused.replies[0].text
    assert path.read_bytes().endswith(b"# a note added by hand\n")


async def test_red_flag_and_other_files_are_never_editable(env: Env) -> None:
    assert editable("faq-causes.yaml") and editable("chatter.yaml")
    for name in ("red_flags/cauda-equina.yaml", "triage.yaml", "synonyms.yaml", "consent.yaml", "../faq-x.yaml"):
        assert not editable(name)
    who = Moderator("test", "mod1", "Mo")
    before = env.read("red_flags/cauda-equina.yaml")
    result = await env.desk.editor._apply(who, "edit", "red_flags/cauda-equina.yaml", None, "x", lambda t: t + "#\n")
    assert not result.ok and "can't be edited from the chat" in result.message
    assert env.read("red_flags/cauda-equina.yaml") == before


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_each_change_is_a_git_commit_authored_by_the_moderator(env: Env) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(env.folder), *args], check=True, capture_output=True,
                              text=True).stdout

    git("init", "-q")
    git("-c", "user.name=op", "-c", "user.email=op@example.org", "add", ".")
    git("-c", "user.name=op", "-c", "user.email=op@example.org", "commit", "-qm", "knowledge")
    (env.folder / "notes.txt").write_text("not part of any change\n")
    out = await env.say('/faq phrase overstriding "should my steps be shorter and quicker"')
    assert out.replies[0].text.startswith("✅")
    log = git("log", "--format=%an|%s", "-n", "1")
    assert log.startswith("Mod1|FAQ #1 added the phrasing"), log
    assert git("show", "--name-only", "--format=", "HEAD").split() == ["faq-causes.yaml"]
    assert git("status", "--porcelain").split() == ["??", "notes.txt"]


@pytest.mark.slow
async def test_the_check_runs_once_per_change_after_the_warm_up(env: Env) -> None:
    editor = env.desk.editor
    calls: list[dict[str, bytes]] = []
    check = editor.check

    def counting(folder: Path, changes: dict[str, bytes]):  # type: ignore[no-untyped-def]
        calls.append(changes)
        return check(folder, changes)

    editor.check = counting
    await editor.warm_up(0)
    assert calls == [{}]  # the folder as it is: what a change may not make worse
    out = await env.say('/faq phrase overstriding "should my steps be shorter and quicker"')
    assert out.replies[0].text.startswith("✅") and len(calls) == 2 and set(calls[1]) == {"faq-causes.yaml"}
    assert (await env.say("/faq undo")).replies[0].text.startswith("✅") and len(calls) == 3
