"""The review queue: the most asked unanswered questions, grouped by similarity, one card at a time, with the FAQ
entries they most resemble. Counts and wording only: never who asked.

A card is found again from its button after a restart: the question group is named by a short hash of its text and
the queue is rebuilt from the unanswered log (without the questions marked "not for the bot" and those the current
knowledge now answers)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.decision import decide
from bot.core.knowledge import CHATTER_ID, FaqEntry, Knowledge
from bot.core.reports import _key, _similar, group_unanswered, redact

if TYPE_CHECKING:
    from bot.core.faq_editing import ModerationLog
    from bot.core.settings import MatchingSettings

#: how many unanswered wordings are read to build the queue (most asked first)
READ_LIMIT = 1000
SUGGESTIONS = 3
#: entry ids this long or shorter go on a button as they are; longer ones as a hash (64-byte payloads)
MAX_ID_IN_PAYLOAD = 40
_MARKS = re.compile(r"<(?:name|handle|email|link|number)>|#")


class UnansweredSource(Protocol):
    async def unanswered(self, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One question group on a card: its position in the queue (0-based) of ``total``."""

    position: int
    total: int
    text: str
    count: int
    variants: int
    last_seen: datetime
    suggestions: tuple[FaqEntry, ...]

    @property
    def ref(self) -> str:
        return question_ref(self.text)

    @property
    def phrasing(self) -> str:
        return as_phrasing(self.text)


def question_ref(text: str) -> str:
    """A question group's name on a button (8 hex characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def entry_ref(entry_id: str) -> str:
    """An entry id on a button: the id itself, or '~' and a hash for the rare id too long for a 64-byte payload."""
    if len(entry_id.encode("utf-8")) <= MAX_ID_IN_PAYLOAD:
        return entry_id
    return "~" + hashlib.sha256(entry_id.encode("utf-8")).hexdigest()[:12]


def resolve_entry(k: Knowledge, ref: str) -> FaqEntry | None:
    if not ref.startswith("~"):
        entry = k.entries.get(ref)
        return entry if entry is not None and ref != CHATTER_ID else None
    return next((e for e in k.entries.values() if entry_ref(e.id) == ref), None)


def as_phrasing(text: str) -> str:
    """A stored question as a phrasing: masked details (<name>, numbers...) left out."""
    return " ".join(_MARKS.sub(" ", redact(text)).split())


def suggestions(k: Knowledge, text: str, limit: int = SUGGESTIONS) -> tuple[FaqEntry, ...]:
    """The entries a question most resembles, best first."""
    found = [c.id for c in k.matcher.match(text, limit=limit + 2) if c.id != CHATTER_ID and c.id in k.entries]
    return tuple(k.entries[i] for i in found[:limit])


def search(k: Knowledge, query: str, limit: int = 5) -> list[FaqEntry]:
    """Entries by id (exact, then prefix) or by the words of their title, then by matching the query as a question."""
    q = query.strip().lower()
    if not q:
        return []
    found: list[FaqEntry] = []

    def add(entries: Any) -> None:
        for e in entries:
            if e.id != CHATTER_ID and e not in found and len(found) < limit:
                found.append(e)

    add(e for e in k.entries.values() if e.id == q)
    add(e for e in k.entries.values() if e.id.startswith(q))
    words = set(re.findall(r"\w+", q))
    add(e for e in k.entries.values() if words and words <= set(re.findall(r"\w+", e.title.lower())))
    add(e for e in k.entries.values() if words & set(re.findall(r"\w+", f"{e.title} {e.id}".lower())))
    add(suggestions(k, query, limit))
    return found


class ReviewQueue:
    """Builds the queue from the unanswered log; marks questions "not for the bot"."""

    def __init__(self, source: UnansweredSource, log: ModerationLog, matching: MatchingSettings) -> None:
        self.source = source
        self.log = log
        self.matching = matching

    async def groups(self, k: Knowledge, *, open_only: bool = True) -> list[dict[str, Any]]:
        """The question groups, most asked first; ``open_only`` leaves out ignored and now-answered ones. The
        grouping and matching run in a thread: a long unanswered log never holds up the event loop."""
        rows = await self.source.unanswered(limit=READ_LIMIT)
        ignored = await self.log.ignored() if open_only else None
        return await asyncio.to_thread(self._groups, k, rows, ignored)

    def _groups(self, k: Knowledge, rows: list[dict[str, Any]], ignored: list[str] | None) -> list[dict[str, Any]]:
        groups = group_unanswered(rows, limit=READ_LIMIT)
        if ignored is None:
            return groups
        keys = [_key(t) for t in ignored]
        out = []
        for g in groups:
            if any(_similar(g["key"], i) or g["key"] == i for i in keys):
                continue
            if decide(k, as_phrasing(g["text"]), self.matching).kind == "answer":
                continue  # a phrasing added since (from the chat or in the file) answers it now
            out.append(g)
        return out

    async def item(self, k: Knowledge, position: int) -> ReviewItem | None:
        """The card at ``position`` (the last one when the queue has become shorter), or None when it is empty."""
        groups = await self.groups(k)
        if not groups:
            return None
        position = max(0, min(position, len(groups) - 1))
        g = groups[position]
        return ReviewItem(position, len(groups), g["text"], g["count"], g["variants"], g["last_seen"],
                          suggestions(k, as_phrasing(g["text"])))

    async def find(self, k: Knowledge, ref: str) -> dict[str, Any] | None:
        """The question group a button names (ignored ones too: "add it to chatter" comes after "not for the bot")."""
        for g in await self.groups(k, open_only=False):
            if question_ref(g["text"]) == ref:
                return g
        return None

    async def ignore(self, text: str, at: datetime) -> None:
        await self.log.ignore(text, at)
