"""Telegram's form for the moderators' FAQ editing (issue 17): a short guided conversation in the private chat.

`/faq add` (or "New entry" on a review card) asks for the title, the phrasings (one per line), the answer and the
source, then shows the whole entry with Save and a button per part to change; `/faq edit ENTRY` (or "Edit" under
/faq show) starts at that summary with the entry as it is. "Another entry…" asks for an id or words of a title and
answers with the matching entries as buttons. /cancel stops; any other command leaves the conversation.

The conversation is taken before the engine: what a moderator types as an answer (which may well name symptoms)
is never read as a runner's message. It lives in memory for 15 minutes of silence; nothing is stored until Save,
which goes through the moderators' desk (checked, written, recorded) like every other change."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from bot.adapters.telegram_support import EngineLike
from bot.core import payloads
from bot.core.commands_parse import parse_command
from bot.core.faq_editing import EntryFields
from bot.core.knowledge import MAX_TITLE
from bot.core.messages import Choice, IncomingMessage, Outcome, Reply
from bot.core.moderation import NOT_A_MODERATOR, payload
from bot.core.payloads import Kind

if TYPE_CHECKING:
    from telegram import Chat

    from bot.core.moderation import ModeratorDesk

#: a conversation left this long without an answer is forgotten
IDLE_SECONDS = 900.0
PARTS = ("title", "questions", "answer", "source")
ASK = {
    "title": f"What's the entry's title? (at most {MAX_TITLE} characters; it is shown on buttons)",
    "questions": "How do runners ask it? Send the phrasings in one message, one per line.",
    "answer": "Send the answer (one message; line breaks are kept).",
    "source": "The source: a public reference with its web address. Send it, or press Skip.",
}
STOPPED = "Stopped: nothing was changed."
EXPIRED = "This form has expired. Start again with /faq add or /faq edit ENTRY."

#: re-checks, at Save, that the user is still a moderator
Check = Callable[[], Awaitable[bool]]


@dataclass
class _Flow:
    kind: str  # "add", "edit" or "search"
    entry_id: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    waiting_for: str | None = None  # the part the next message answers; None: the summary is shown
    position: int = 0
    ref: str = ""
    touched: float = 0.0


class TelegramFaqFlow:
    """The conversations of every moderator on one adapter, keyed by Telegram user id."""

    def __init__(self, desk: ModeratorDesk, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.desk = desk
        self.clock = clock
        self._flows: dict[str, _Flow] = {}

    def _live(self, user_id: str) -> _Flow | None:
        flow = self._flows.get(user_id)
        if flow is not None and self.clock() - flow.touched > IDLE_SECONDS:
            del self._flows[user_id]
            return None
        return flow

    # ------------------------------------------------------------------ entry points (None: not ours)
    async def message(self, msg: IncomingMessage, check: Check) -> Outcome | None:
        command = parse_command(msg.text)
        flow = self._live(msg.user_id) if msg.is_private else None
        if flow is not None:
            if command is None:
                return await self._answer(msg, flow, msg.text, check)
            del self._flows[msg.user_id]  # any command leaves the conversation
            return _out(Reply(STOPPED)) if command.name in ("cancel", "stop") else None
        if command is None or command.name != "faq" or not msg.is_moderator:
            return None  # the engine answers (and refuses non-moderators privately)
        sub, _, rest = command.args.partition(" ")
        if sub.lower() == "add":
            return self._start_add(msg, "")
        if sub.lower() == "edit" and rest.strip():
            return self._start_edit(msg, rest.strip())
        return None

    async def button(self, msg: IncomingMessage, check: Check) -> Outcome | None:
        decoded = payloads.decode(msg.choice)
        if decoded is None or decoded.kind is not Kind.MODERATION:
            return None
        parts = [decoded.kind.value, *decoded.args]
        if len(parts) < 3 or parts[1] not in ("fl", "new", "ed", "oth"):
            return None
        private = not msg.is_private
        if not msg.is_moderator:
            return _out(Reply(NOT_A_MODERATOR, private=private))
        if parts[1] == "ed":
            return self._start_edit(msg, parts[2])
        if parts[1] == "fl":
            flow = self._live(msg.user_id)
            if flow is None:
                return _out(Reply(EXPIRED, private=private))
            return await self._pressed(msg, flow, parts[2:], check)
        if len(parts) < 4 or not parts[2].isdigit():
            return None
        position, ref = int(parts[2]), parts[3]
        if parts[1] == "oth":
            self._flows[msg.user_id] = _Flow("search", position=position, ref=ref, waiting_for="query",
                                             touched=self.clock())
            return _out(Reply("Which entry should the question go to? Send its id or words of its title "
                              "(/cancel stops).", private=private))
        question = await self.desk.question(ref)
        if question is None:
            return _out(Reply("That question is no longer in the unanswered log.", private=private))
        return self._start_add(msg, question)

    # ------------------------------------------------------------------ steps
    def _start_add(self, msg: IncomingMessage, first_phrasing: str) -> Outcome:
        flow = _Flow("add", waiting_for="title", touched=self.clock())
        if first_phrasing:
            flow.values["questions"] = first_phrasing
        self._flows[msg.user_id] = flow
        intro = "New FAQ entry (/cancel stops at any time; nothing is saved until you press Save)."
        if first_phrasing:
            intro += f"\nIts first phrasing: “{first_phrasing}”."
        return _out(Reply(intro, private=not msg.is_private), self._ask(msg, flow, "title"))

    def _start_edit(self, msg: IncomingMessage, entry_text: str) -> Outcome:
        entry = self.desk.entry(entry_text)
        form = self.desk.form(entry.id) if entry is not None else None
        if form is None or form.entry_id is None:
            return _out(Reply(f"There is no entry '{entry_text[:60]}'. /faq find WORDS lists entries.",
                              private=not msg.is_private))
        flow = _Flow("edit", form.entry_id, touched=self.clock(), values={
            "title": form.title, "questions": "\n".join(form.questions), "answer": form.answer,
            "source": form.source})
        self._flows[msg.user_id] = flow
        return _out(self._summary(msg, flow, f"Editing '{form.entry_id}'. Choose a part to change, then Save."))

    def _ask(self, msg: IncomingMessage, flow: _Flow, part: str) -> Reply:
        flow.waiting_for = part
        text = ASK[part]
        buttons: tuple[Choice, ...] = (Choice("Cancel", payload("fl", "cancel")),)
        if part == "questions" and flow.kind == "add" and flow.values.get("questions"):
            text = ("How else do runners ask it? Send more phrasings, one per line, or press Done to keep just "
                    f"“{flow.values['questions']}”.")
            buttons = (Choice("Done", payload("fl", "done")), *buttons)
        elif part == "questions" and flow.kind == "edit":
            text += " Send all of them: a phrasing you leave out is removed."
        if part == "source":
            buttons = (Choice("Skip", payload("fl", "skip")), *buttons)
        return Reply(text, choices=buttons, private=not msg.is_private)

    def _next_part(self, flow: _Flow) -> str | None:
        if flow.kind != "add":
            return None
        return next((p for p in PARTS if p not in flow.values or (p == "questions" and p not in flow.changed)), None)

    async def _answer(self, msg: IncomingMessage, flow: _Flow, text: str, check: Check) -> Outcome:
        flow.touched = self.clock()
        if flow.kind == "search":
            del self._flows[msg.user_id]
            return _out(self.desk.search_reply(text, flow.position, flow.ref, private=False))
        part = flow.waiting_for
        if part is None:
            return _out(self._summary(msg, flow, "Use the buttons: Save, or the part to change."))
        value = text.strip()
        if part == "title" and len(value) > MAX_TITLE:
            return _out(Reply(f"That title has {len(value)} characters; please keep it to {MAX_TITLE}."))
        if part == "questions":
            lines = [line.strip() for line in value.splitlines() if line.strip()]
            if flow.kind == "add" and flow.values.get("questions") and "questions" not in flow.changed:
                lines = [flow.values["questions"], *lines]
            value = "\n".join(dict.fromkeys(lines))
        flow.values[part] = value
        flow.changed.add(part)
        following = self._next_part(flow)
        if following is not None:
            return _out(self._ask(msg, flow, following))
        flow.waiting_for = None
        return _out(self._summary(msg, flow, "Here it is. Save it, or choose a part to change first."))

    async def _pressed(self, msg: IncomingMessage, flow: _Flow, args: list[str], check: Check) -> Outcome:
        flow.touched = self.clock()
        action = args[0]
        if action == "cancel":
            del self._flows[msg.user_id]
            return _out(Reply(STOPPED))
        if action == "done" and flow.waiting_for == "questions":
            flow.changed.add("questions")
            following = self._next_part(flow)
            return _out(self._ask(msg, flow, following) if following else self._summary(msg, flow, "Here it is."))
        if action == "skip" and flow.waiting_for == "source":
            flow.values["source"] = ""
            flow.changed.add("source")
            flow.waiting_for = None
            return _out(self._summary(msg, flow, "Here it is. Save it, or choose a part to change first."))
        if action == "part" and len(args) > 1 and args[1] in PARTS:
            return _out(self._ask(msg, flow, args[1]))
        if action == "save":
            return await self._save(msg, flow, check)
        return _out(self._summary(msg, flow, "Use the buttons: Save, or the part to change."))

    async def _save(self, msg: IncomingMessage, flow: _Flow, check: Check) -> Outcome:
        acting = replace(msg, is_moderator=await check())
        values = {p: flow.values.get(p) for p in PARTS if flow.kind == "add" or p in flow.changed}
        fields = EntryFields(
            title=values.get("title"),
            questions=tuple(values["questions"].splitlines()) if values.get("questions") is not None else None,
            answer=values.get("answer"),
            source=values.get("source"),
        )
        if flow.kind == "add":
            replies = await self.desk.add_entry(acting, fields)
        else:
            assert flow.entry_id is not None
            replies = await self.desk.edit_entry(acting, flow.entry_id, fields)
        if replies and replies[0].text.startswith("✅"):
            del self._flows[msg.user_id]
            return _out(*replies)
        again = self._summary(msg, flow, "Change a part and press Save again, or Cancel.")
        return _out(*replies, again)

    def _summary(self, msg: IncomingMessage, flow: _Flow, note: str) -> Reply:
        flow.waiting_for = None
        v = flow.values
        questions = [q for q in v.get("questions", "").splitlines() if q]
        lines = [note, "", f"Title: {v.get('title') or '(none)'}", f"Phrasings ({len(questions)}):"]
        lines += [f"• {q}" for q in questions]
        lines += ["Answer:", v.get("answer") or "(none yet)", f"Source: {v.get('source') or '(none)'}"]
        choices = (
            Choice("Save", payload("fl", "save")),
            *(Choice(f"Change the {name}", payload("fl", "part", part)) for part, name in
              (("title", "title"), ("questions", "phrasings"), ("answer", "answer"), ("source", "source"))),
            Choice("Cancel", payload("fl", "cancel")),
        )
        return Reply("\n".join(lines), choices=choices, private=not msg.is_private)


def _out(*replies: Reply) -> Outcome:
    return Outcome(tuple(replies), "command")


class FlowHost(Protocol):
    """What the conversation needs from the Telegram adapter."""

    faq_flow: TelegramFaqFlow | None
    _engine: EngineLike

    async def _is_moderator(self, user_id: int, chat: Chat) -> bool: ...


async def handle(adapter: FlowHost, incoming: IncomingMessage, user_id: int, chat: Chat) -> Outcome:
    """The conversation's answer when the update belongs to it (or starts it), else the engine's."""
    flow = adapter.faq_flow
    if flow is not None:
        async def check() -> bool:
            return await adapter._is_moderator(user_id, chat)

        out = await (flow.button(incoming, check) if incoming.choice is not None else flow.message(incoming, check))
        if out is not None:
            return out
    return await adapter._engine.handle(incoming)
