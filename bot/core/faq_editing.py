"""Moderators' FAQ changes from the chat: every change goes the way of a file edit. The new text is checked first (it
must load and add no problem to `runbot check`: an edit that breaks an example or collides with another entry is
refused with the reason), then written atomically with comments and order kept, recorded (who, when, which entry,
the file before and after), committed when the folder is a git work tree, and served at once (hot reload)."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.core import faq_patch
from bot.core.faq_git import GitCommitter
from bot.core.faq_patch import PatchError
from bot.core.faq_yaml import NewEntry, add_to_text, atomic_write, existing_ids
from bot.core.knowledge import CHATTER_FILE, CHATTER_ID, FAQ_GLOB, Knowledge, KnowledgeRef
from bot.core.ports import Clock
from bot.core.reload import digest, snapshot
from bot.core.schema import KEBAB
from bot.core.yamlio import Problem

log = logging.getLogger(__name__)

#: a new entry's id made from its title stays short enough to name it on a button
MAX_NEW_ID = 40
MAX_PHRASING = 300
MAX_PROBLEMS_SHOWN = 6
#: seconds after start before the check runs once in the background (see ``FaqEditor.warm_up``)
WARM_UP_DELAY = 30.0
#: warnings a change may add without being refused (shown to the moderator): a thin entry, a long answer, and the
#: FAQ model not knowing the change yet (the words answer for it until the host trains the model again)
_ADVISORY = (
    re.compile(r"has \d+ phrasing\(s\)"),
    re.compile(r"split into several Discord messages"),
    re.compile(r"since faq-model\.json was trained"),
)
_FILE_LINE = re.compile(r"\(([^()\s]+):\d+\)")

#: (folder, {file name: new bytes}) -> the knowledge it would load (None: it would not) and every check problem
Checker = Callable[[Path, dict[str, bytes]], tuple[Knowledge | None, list[Problem]]]


@dataclass(frozen=True, slots=True)
class Moderator:
    """Who made a change: the platform, their platform user id and the name shown."""

    platform: str
    user_id: str
    name: str


@dataclass(frozen=True, slots=True)
class NewChange:
    at: datetime
    moderator: Moderator
    action: str
    file: str
    entry_id: str | None
    summary: str
    before: bytes | None
    after: bytes
    undoes: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change: ``before``/``after`` are the whole file's bytes."""

    id: int
    at: datetime
    moderator: Moderator
    action: str
    file: str
    entry_id: str | None
    summary: str
    before: bytes | None
    after: bytes
    undoes: int | None
    undone_by: int | None


class ModerationLog(Protocol):
    """Where changes, ignored questions and sent digests are kept (``bot.storage.sqlite.moderation`` on SQLite)."""

    async def record_change(self, change: NewChange) -> int: ...

    async def changes(self, entry_id: str | None = None, limit: int = 10) -> list[Change]: ...

    async def last_undoable(self, moderator: Moderator) -> Change | None: ...

    async def later_change(self, file: str, after_id: int) -> Change | None: ...

    async def ignore(self, question: str, at: datetime) -> None: ...

    async def ignored(self) -> list[str]: ...

    async def claim_digest(self, week: str, at: datetime) -> bool: ...

    async def new_unanswered(self, since: datetime, limit: int = 500) -> list[dict[str, object]]: ...


@dataclass(frozen=True, slots=True)
class EntryFields:
    """What a form or conversation sets; None leaves a field as it is (an empty source removes it)."""

    title: str | None = None
    questions: tuple[str, ...] | None = None
    answer: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class EditResult:
    """What became of a change: ``message`` says what happened, or why nothing did."""

    ok: bool
    message: str
    change_id: int | None = None
    entry_id: str | None = None
    notes: tuple[str, ...] = ()
    action: str = ""


def editable(file: str) -> bool:
    """FAQ files and chatter.yaml at the top of the folder; never the red-flag catalogue, triage or anything else."""
    return "/" not in file and "\\" not in file and (fnmatch.fnmatch(file, FAQ_GLOB) or file == CHATTER_FILE)


def slug(title: str) -> str:
    """'Heat or ice?' -> 'heat-or-ice'."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    out = ""
    for w in words:
        if len(out) + len(w) + 1 > MAX_NEW_ID:
            break
        out = f"{out}-{w}" if out else w
    return out


def _key(p: Problem) -> tuple[str, str, str]:
    """A problem without line numbers: an edit moves the lines below it, which is not a new problem."""
    return p.file, p.severity, _FILE_LINE.sub(r"(\1)", p.message)


def verdict(before: list[Problem], after: list[Problem], loads: bool) -> tuple[list[str], list[str]]:
    """(reasons to refuse, notes): the problems the change adds. Errors and collisions refuse it; a thin entry or a
    long answer is only noted."""
    if not loads:
        return [str(p) for p in after if p.severity == "error"] or ["the knowledge would not load"], []
    known = {_key(p) for p in before}
    new = [p for p in after if _key(p) not in known]
    notes = [p for p in new if p.severity != "error" and any(r.search(p.message) for r in _ADVISORY)]
    return [str(p) for p in new if p not in notes], [p.message for p in notes]


class FaqEditor:
    """Applies moderators' changes to the knowledge folder, one at a time."""

    def __init__(
        self,
        folder: Path,
        knowledge: KnowledgeRef,
        log: ModerationLog,
        check: Checker,
        clock: Clock,
        *,
        git: GitCommitter | None = None,
    ) -> None:
        self.folder = folder
        self.knowledge = knowledge
        self.log = log
        self.check = check
        self.clock = clock
        self.git = git if git is not None else GitCommitter(folder)
        self._lock = asyncio.Lock()
        self._baseline: tuple[str, list[Problem]] | None = None

    # ------------------------------------------------------------------ changes
    async def add_phrasing(self, who: Moderator, entry_id: str, phrasing: str) -> EditResult:
        phrasing = " ".join(phrasing.split())[:MAX_PHRASING]
        file = self._file_of(entry_id)
        if file is None:
            return self._unknown(entry_id)
        summary = f"added the phrasing “{phrasing}” to '{entry_id}'"
        return await self._apply(who, "add-phrasing", file, entry_id, summary,
                                 lambda text: faq_patch.add_phrasing(text, entry_id, phrasing))

    async def remove_phrasing(self, who: Moderator, entry_id: str, phrasing: str) -> EditResult:
        file = self._file_of(entry_id)
        if file is None:
            return self._unknown(entry_id)
        summary = f"removed the phrasing “{phrasing}” from '{entry_id}'"
        return await self._apply(who, "remove-phrasing", file, entry_id, summary,
                                 lambda text: faq_patch.remove_phrasing(text, entry_id, phrasing))

    async def edit_entry(self, who: Moderator, entry_id: str, fields: EntryFields) -> EditResult:
        entry = self.knowledge.current.entries.get(entry_id)
        file = self._file_of(entry_id)
        if entry is None or file is None:
            return self._unknown(entry_id)
        parts = []
        if fields.title is not None and fields.title.strip() != entry.title:
            parts.append("title")
        if fields.questions is not None and list(fields.questions) != list(entry.questions):
            gone = len(set(entry.questions) - set(fields.questions))
            added = len(set(fields.questions) - set(entry.questions))
            parts.append(f"phrasings +{added} -{gone}")
        if fields.answer is not None and fields.answer.strip() != entry.answer.strip():
            parts.append("answer")
        if fields.source is not None and fields.source.strip() != (entry.source or ""):
            parts.append("source")
        if not parts:
            return EditResult(False, f"Nothing to change: '{entry_id}' already reads like that.", entry_id=entry_id)

        def change(text: str) -> str:
            if fields.questions is not None:
                text = faq_patch.set_questions(text, entry_id, list(fields.questions))
            for key in ("title", "answer", "source"):
                value = getattr(fields, key)
                if value is not None:
                    text = faq_patch.set_field(text, entry_id, key, value)
            return text

        summary = f"edited '{entry_id}' ({', '.join(parts)})"
        return await self._apply(who, "edit-entry", file, entry_id, summary, change)

    async def add_entry(
        self, who: Moderator, fields: EntryFields, *, entry_id: str | None = None, file: str | None = None
    ) -> EditResult:
        questions = [" ".join(q.split()) for q in fields.questions or () if q.strip()]
        title = " ".join((fields.title or "").split())
        answer = (fields.answer or "").strip("\n")
        if not questions or not answer.strip():
            return EditResult(False, "Not added: a new entry needs at least one phrasing and an answer.")
        eid = (entry_id or slug(title or questions[0])).strip()
        taken = set(self.knowledge.current.entries) | set(await asyncio.to_thread(existing_ids, self.folder))
        if not KEBAB.match(eid) or len(eid) > 60:
            return EditResult(False, f"Not added: '{eid}' isn't a usable id (lowercase words joined by '-').")
        if eid in taken:
            return EditResult(False, f"Not added: there is already an entry '{eid}'; pick another id or title.")
        file = file or self._best_file(questions)
        if not editable(file) or not fnmatch.fnmatch(file, FAQ_GLOB) or not (self.folder / file).is_file():
            return EditResult(False, f"Not added: {file} is not one of the FAQ files.")
        entry = NewEntry(eid, title or None, questions, answer, (fields.source or "").strip() or None)
        summary = f"added the entry '{eid}' to {file}"
        return await self._apply(who, "add-entry", file, eid, summary, lambda text: add_to_text(text, entry))

    async def add_chatter(self, who: Moderator, line: str) -> EditResult:
        line = " ".join(line.split())[:MAX_PHRASING]
        summary = f"added “{line}” to {CHATTER_FILE}"
        return await self._apply(who, "add-chatter", CHATTER_FILE, None, summary,
                                 lambda text: faq_patch.add_chatter(text, line))

    async def undo(self, who: Moderator, *, expect: int | None = None) -> EditResult:
        """Put back the file as it was before the moderator's last change (byte for byte); ``expect``: only when that
        last change is this one (an Undo button under an older change)."""
        last = await self.log.last_undoable(who)
        if last is None:
            return EditResult(False, "You have no change to undo.")
        if expect is not None and last.id != expect:
            return EditResult(False, f"Not undone: #{expect} is not your latest change any more (#{last.id} is); "
                                     "/faq undo reverts your latest one, /faq history lists them.")
        later = await self.log.later_change(last.file, last.id)
        if later is not None:
            why = (f"#{later.id} ({later.moderator.name}, {later.summary}) changed {last.file} after your "
                   f"#{last.id}; it has to be undone first")
        else:
            why = (f"{last.file} was changed outside the chat after #{last.id}, so putting back the old file would "
                   "lose that change; edit the file by hand instead")
        before = last.before

        def restore(text: str) -> str:
            if text.encode("utf-8") != last.after:  # only ever over the very bytes the change wrote
                raise PatchError(why)
            return (before or b"").decode("utf-8")

        summary = f"undid #{last.id} ({last.summary})"
        return await self._apply(who, "undo", last.file, last.entry_id, summary, restore, undoes=last.id)

    # ------------------------------------------------------------------ the one path every change takes
    async def _apply(
        self, who: Moderator, action: str, file: str, entry_id: str | None, summary: str,
        change: Callable[[str], str], *, undoes: int | None = None,
    ) -> EditResult:
        if not editable(file):
            return EditResult(False, f"Not changed: {file} can't be edited from the chat.", entry_id=entry_id)
        path = self.folder / file
        async with self._lock:
            try:
                before = await asyncio.to_thread(path.read_bytes)
                after = (await asyncio.to_thread(change, before.decode("utf-8"))).encode("utf-8")
            except PatchError as exc:
                return EditResult(False, f"Not changed: {exc}.", entry_id=entry_id)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                return EditResult(False, f"Not changed: I couldn't read {file} ({exc}).", entry_id=entry_id)
            if after == before:
                return EditResult(False, "Nothing to change: the file already says that.", entry_id=entry_id)
            baseline = await self._problems_now()
            k, problems = await asyncio.to_thread(self.check, self.folder, {file: after})
            reasons, notes = verdict(baseline, problems, k is not None)
            if reasons or k is None:
                shown = reasons[:MAX_PROBLEMS_SHOWN]
                more = f"\n… and {len(reasons) - len(shown)} more" if len(reasons) > len(shown) else ""
                return EditResult(False, "Not changed: the check found problems this change would cause:\n"
                                  + "\n".join(f"• {r}" for r in shown) + more, entry_id=entry_id)
            if await asyncio.to_thread(path.read_bytes) != before:
                return EditResult(False, f"Not changed: {file} changed while I was checking; try again.",
                                  entry_id=entry_id)
            try:
                await asyncio.to_thread(atomic_write, path, after)
            except OSError as exc:
                return EditResult(False, f"Not changed: I can't write {file} ({exc.strerror or exc}).",
                                  entry_id=entry_id)
            self._baseline = (await asyncio.to_thread(lambda: digest(snapshot(self.folder))), problems)
            self.knowledge.swap(k)  # served from the next message on; the watcher finds the same files
            log.info("moderator change on %s: %s %s (%s)", who.platform, action, file, entry_id or "-")
            change_id, recorded = None, ""
            try:
                change_id = await self.log.record_change(NewChange(
                    self.clock.now(), who, action, file, entry_id, summary, before, after, undoes))
            except Exception as exc:  # the file is written and served; only the history is missing
                log.warning("could not record a moderator's change in the history: %s", exc)
                recorded = " (The history could not be written, so this change can't be undone from the chat.)"
            number = f"#{change_id} " if change_id else ""
            await self.git.commit(file, f"FAQ {number}{summary} (from the chat)", who.name,
                                  f"{who.platform}-{who.user_id}@runbot.invalid")
        return EditResult(True, summary + recorded, change_id, entry_id, tuple(notes), action)

    async def warm_up(self, delay: float = WARM_UP_DELAY) -> None:
        """Run the check once ahead of the first change, so a moderator's first click is not the slow one; after
        ``delay``, so the start-up's own work (and the first runners' answers) never wait for it."""
        await asyncio.sleep(delay)
        try:
            async with self._lock:
                await self._problems_now()
        except Exception as exc:  # the first change will try again
            log.warning("could not check the knowledge folder ahead of moderators' changes: %s", exc)

    async def _problems_now(self) -> list[Problem]:
        """`runbot check`'s problems with the folder as it is (kept until the folder's contents change)."""
        stamp = await asyncio.to_thread(lambda: digest(snapshot(self.folder)))
        if self._baseline is None or self._baseline[0] != stamp:
            _, problems = await asyncio.to_thread(self.check, self.folder, {})
            self._baseline = (stamp, problems)
        return self._baseline[1]

    # ------------------------------------------------------------------ looking things up
    def _file_of(self, entry_id: str) -> str | None:
        entry = self.knowledge.current.entries.get(entry_id)
        return entry.file if entry is not None and entry_id != CHATTER_ID else None

    @staticmethod
    def _unknown(entry_id: str) -> EditResult:
        return EditResult(False, f"There is no entry '{entry_id}'. /faq find WORDS lists entries by id or title.")

    def _best_file(self, questions: list[str]) -> str:
        """The file of the entry closest to the new phrasings, else the last FAQ file."""
        k = self.knowledge.current
        for q in questions:
            for c in k.matcher.match(q, limit=3):
                if c.id in k.entries:
                    return k.entries[c.id].file
        files = sorted(f.name for f in self.folder.glob(FAQ_GLOB))
        return files[-1] if files else "faq.yaml"

    async def history(self, entry_id: str | None = None, limit: int = 10) -> list[Change]:
        return await self.log.changes(entry_id, limit)
