"""Hot reload on a running engine: valid edits are served, broken edits are reported and the old answers stay."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from support import KNOWLEDGE, dm

from bot.bootstrap import Runtime, build
from bot.config import Settings
from bot.core.engine import EngineOptions
from bot.core.messages import ChatRef, IncomingMessage, Reply
from bot.core.payloads import faq
from bot.core.reload import KnowledgeWatcher

POLL = 0.05
NEW_ENTRY = """
  - id: altitude-camp
    title: Altitude camps
    questions:
      - does an altitude training camp help my back
      - is running at high altitude hard on the back
      - back pain at an altitude camp
    keywords: [altitude, altitude camp]
    answer: |
      ALTITUDE-ANSWER: altitude itself is not known to cause back pain; the extra training volume of a camp can.
"""
ABOUT_Q = "who is behind runbot"
PRIVACY_Q = "what data do you store about me"


class RecordingAdapter:
    """An adapter that keeps what moderators would have been told."""

    platform = "rec"

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.sent: list[tuple[ChatRef, Sequence[Reply]]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        self.sent.append((target, replies))

    async def notify_moderators(self, text: str) -> bool:
        self.notes.append(text)
        return True


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, dest, ignore=shutil.ignore_patterns("README.md"))
    return dest


@pytest.fixture
async def live(tmp_path: Path, folder: Path) -> AsyncIterator[tuple[Runtime, KnowledgeWatcher, RecordingAdapter]]:
    """A runtime on a copy of the knowledge with its watcher running as a task, like App.run wires it."""
    base = Settings()
    settings = dataclasses.replace(base, knowledge=dataclasses.replace(base.knowledge, poll_seconds=POLL))
    options = EngineOptions(first_notice=False, rate_limit=False)
    rt = build(settings, knowledge_path=folder, db_path=tmp_path / "runbot.db", options=options)
    async with rt:
        adapter = RecordingAdapter()
        rt.add_adapter(adapter)
        watcher = rt.knowledge_watcher(settle_seconds=POLL)
        task = asyncio.create_task(watcher.run())
        try:
            yield rt, watcher, adapter
        finally:
            assert not task.done(), "the watcher task died"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def wait_for(predicate, within: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``await predicate()`` is true; fails after ``within`` seconds."""
    start = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.02)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


@pytest.mark.slow
async def test_valid_edit_is_served_within_three_seconds(live, folder: Path) -> None:  # type: ignore[no-untyped-def]
    rt, watcher, adapter = live
    question = "does an altitude training camp help my back"
    before = await rt.engine.handle(dm(question))
    assert before.faq_id != "altitude-camp"
    path = folder / "faq-training.yaml"
    path.write_text(path.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")

    async def served() -> bool:
        return (await rt.engine.handle(dm(question))).faq_id == "altitude-camp"

    seconds = await wait_for(served, within=3.0)
    assert seconds < 3.0
    out = await rt.engine.handle(dm(question))
    assert out.kind == "answer" and "ALTITUDE-ANSWER" in out.replies[0].text
    assert watcher.reloads == 1 and adapter.notes == []  # a good reload is not news for moderators


@pytest.mark.slow
async def test_broken_edits_are_reported_and_old_answers_kept(  # type: ignore[no-untyped-def]
    live, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt, watcher, adapter = live
    caplog.set_level(logging.WARNING, logger="bot.core.reload")
    good_version = rt.knowledge.current.version
    before = await rt.engine.handle(dm(PRIVACY_Q))
    assert before.faq_id == "privacy"

    # 1. a YAML syntax error: a tab where spaces belong
    bot_file = folder / "faq-bot.yaml"
    good_bot = bot_file.read_text(encoding="utf-8")
    lines = good_bot.splitlines(keepends=True)
    title_at = next(i for i, line in enumerate(lines) if line.startswith("    title: About runbot"))
    lines[title_at] = "\t" + lines[title_at].lstrip(" ")
    bot_file.write_text("".join(lines), encoding="utf-8")
    await wait_for(lambda: _true(len(adapter.notes) >= 1))
    where = f"faq-bot.yaml:{title_at + 1}:"
    assert where in adapter.notes[-1] and "last good version" in adapter.notes[-1]
    assert any(where in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    forced = await rt.engine.handle(_moderator("/faq reload"))
    assert where in forced.replies[0].text
    assert rt.knowledge.current.version == good_version
    still = await rt.engine.handle(dm(PRIVACY_Q, user="u2"))
    assert still.kind == "answer" and still.faq_id == "privacy"
    assert len(adapter.notes) == 1  # the same problem is told once, not on every poll or /faq reload

    # 2. valid YAML again, but an id that already exists in another file
    bot_file.write_text(good_bot, encoding="utf-8")
    train = folder / "faq-training.yaml"
    good_train = train.read_text(encoding="utf-8")
    dup = NEW_ENTRY.replace("id: altitude-camp", "id: privacy")
    train.write_text(good_train + dup, encoding="utf-8")
    await wait_for(lambda: _true(any("duplicate id 'privacy'" in n for n in adapter.notes)))
    dup_line = line_of(good_train + dup, "  - id: privacy")
    note = next(n for n in adapter.notes if "duplicate id" in n)
    assert f"faq-training.yaml:{dup_line}: duplicate id 'privacy' (first at faq-bot.yaml:" in note
    assert rt.knowledge.current.version == good_version
    assert (await rt.engine.handle(dm(PRIVACY_Q, user="u3"))).faq_id == "privacy"
    assert (await rt.engine.handle(dm("does an altitude training camp help my back"))).faq_id != "altitude-camp"

    # 3. fixing the file recovers, and moderators hear that it is fixed
    train.write_text(good_train + NEW_ENTRY, encoding="utf-8")

    async def recovered() -> bool:
        out = await rt.engine.handle(dm("does an altitude training camp help my back"))
        return out.faq_id == "altitude-camp"

    await wait_for(recovered)
    assert "reloaded" in adapter.notes[-1] and "fixed" in adapter.notes[-1]
    assert watcher.last_error is None
    assert (await rt.engine.handle(dm(PRIVACY_Q, user="u4"))).faq_id == "privacy"


@pytest.mark.slow
async def test_faq_reload_reports_success_and_needs_a_moderator(live, folder: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _, _ = live
    refused = await rt.engine.handle(dm("/faq reload"))
    assert "moderators" in refused.replies[0].text
    ok = await rt.engine.handle(_moderator("/faq reload"))
    assert ok.replies[0].text.startswith("✅ Knowledge reloaded:")
    assert f"{len(rt.knowledge.current.entries)} FAQ entries" in ok.replies[0].text


async def test_vanished_folder_keeps_serving(live, folder: Path) -> None:  # type: ignore[no-untyped-def]
    rt, watcher, _ = live
    shutil.rmtree(folder)
    text = await watcher.reload_now()
    assert "last good version" in text
    assert (await rt.engine.handle(dm(PRIVACY_Q))).faq_id == "privacy"


# ---------------------------------------------------------------------------------------------------------- stream
MARK = re.compile(r"\[version ([AB])\]")


def two_versions(folder: Path) -> dict[str, str]:
    """faq-bot.yaml in two versions: about-bot's answer and privacy's title (shown as a button under it) differ."""
    text = (folder / "faq-bot.yaml").read_text(encoding="utf-8")
    assert "title: Your data and privacy\n" in text and "I'm runbot, a chat assistant" in text
    out = {}
    for v in "AB":
        out[v] = (
            text.replace("I'm runbot, a chat assistant", f"[version {v}] I'm runbot, a chat assistant", 1)
            .replace("title: Your data and privacy\n", f"title: Your data and privacy {v}\n", 1)
        )
    assert len(out["A"]) == len(out["B"])  # same size, so a size+mtime check alone could miss a rewrite
    return out


@pytest.mark.slow
async def test_stream_of_messages_during_twenty_rewrites(live, folder: Path) -> None:  # type: ignore[no-untyped-def]
    rt, watcher, adapter = live
    versions = two_versions(folder)
    path = folder / "faq-bot.yaml"
    write_atomically(path, versions["B"])
    await wait_for(lambda: _served_version(rt, "B"))
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def sender() -> None:
        n = 0
        while not done.is_set():
            n += 1
            try:
                out = await rt.engine.handle(dm(ABOUT_Q, user=f"s{n % 7}"))
            except BaseException as exc:  # the engine promises never to raise
                errors.append(exc)
                raise
            assert out.kind == "answer" and out.faq_id == "about-bot", out
            reply = out.replies[0]
            answer_mark = MARK.search(reply.text)
            assert answer_mark is not None, reply.text
            titles = [c.label for c in reply.choices if c.payload == faq("privacy")]
            assert len(titles) == 1
            seen.append((answer_mark.group(1), titles[0][-1]))
            await asyncio.sleep(0)

    async def writer() -> None:
        for i in range(20):
            v = "A" if i % 2 == 0 else "B"
            text = versions[v]
            if i % 2 == 0:
                await asyncio.to_thread(write_atomically, path, text)
            else:  # in place, in two pieces: a poll can read the half-written file
                with path.open("w", encoding="utf-8") as f:
                    half = len(text) // 2
                    f.write(text[:half])
                    f.flush()
                    await asyncio.sleep(0.005)
                    f.write(text[half:])
            await asyncio.sleep(0.2)
        done.set()

    await asyncio.gather(sender(), writer())
    assert errors == []
    assert len(seen) > 100
    mixed = [s for s in seen if s[0] != s[1]]
    assert mixed == [], f"{len(mixed)} replies mixed two versions"
    assert {a for a, _ in seen} == {"A", "B"}  # the stream really saw reloads happen
    await wait_for(lambda: _served_version(rt, "B"))  # the last write (i=19) was version B
    assert watcher.reloads >= 3
    assert adapter.notes == []  # a save in progress is not an error to report


async def _served_version(rt: Runtime, v: str) -> bool:
    out = await rt.engine.handle(dm(ABOUT_Q, user="probe"))
    m = MARK.search(out.replies[0].text) if out.replies else None
    return m is not None and m.group(1) == v


async def _true(value: bool) -> bool:
    return value


def _moderator(text: str) -> IncomingMessage:
    return IncomingMessage("test", "mod-1", "mods", text=text, is_private=False, is_moderator=True)


@pytest.mark.slow
async def test_half_written_file_is_never_swapped_in(  # type: ignore[no-untyped-def]
    live, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save still in progress while the bot reads: a cut-off file can be valid YAML, so it must not go live."""
    rt, watcher, adapter = live
    path = folder / "faq-bot.yaml"
    full = two_versions(folder)["A"]
    ending = "Or just ask a question in your own words."
    cut = full.index(ending) - 30  # inside about-bot's answer: still valid YAML, but the answer is cut short
    swapped: list[str] = []
    real_swap = rt.knowledge.swap

    def recording_swap(k):  # type: ignore[no-untyped-def]
        swapped.append(k.entries["about-bot"].answer)
        real_swap(k)

    monkeypatch.setattr(rt.knowledge, "swap", recording_swap)
    watcher.settle_seconds = 0.3
    with path.open("w", encoding="utf-8") as f:  # a slow writer: half now, the rest a moment later
        f.write(full[:cut])
        f.flush()
        reload = asyncio.create_task(watcher.reload_now())
        await asyncio.sleep(0.05)
        f.write(full[cut:])
    text = await reload
    assert text.startswith("✅")
    assert swapped and all(ending in answer for answer in swapped)
    assert await _served_version(rt, "A")
    assert adapter.notes == []

    # a file that stays cut off (here invalid: an entry without its answer) is reported and the old version kept
    watcher.settle_seconds = POLL
    good = rt.knowledge.current.version
    cut_invalid = full.index("    answer: |")
    path.write_text(full[:cut_invalid], encoding="utf-8")
    await wait_for(lambda: _true(bool(adapter.notes)))
    assert "faq-bot.yaml:" in adapter.notes[-1] and rt.knowledge.current.version == good
    assert await _served_version(rt, "A")


@pytest.mark.slow
async def test_removed_entries_are_told_to_moderators(live, folder: Path) -> None:  # type: ignore[no-untyped-def]
    rt, _, adapter = live
    path = folder / "faq-training.yaml"
    text = path.read_text(encoding="utf-8")
    write_atomically(path, text + NEW_ENTRY)
    await wait_for(lambda: _true("altitude-camp" in rt.knowledge.current.entries))
    assert adapter.notes == []
    write_atomically(path, text)
    await wait_for(lambda: _true(bool(adapter.notes)))
    assert "Entries no longer there: altitude-camp." in adapter.notes[-1]
    assert "altitude-camp" not in rt.knowledge.current.entries
