"""The moderators' desk: `/faq review|add|edit|phrase|remove-phrase|show|find|history|undo` and the buttons of the
review queue (``mod:`` payloads), the same on every platform. Forms (a Discord modal, a Telegram conversation) live
in the adapters and call ``add_entry`` / ``edit_entry`` here; where there is no form (the terminal) the reply says
how to make the change with a command instead.

Moderators only: the adapter checked the platform's permissions (``IncomingMessage.is_moderator``). Replies to a
moderator in a group or server channel are private (a DM or an ephemeral message)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core import payloads
from bot.core.faq_editing import EditResult, EntryFields, FaqEditor, Moderator
from bot.core.knowledge import FaqEntry, KnowledgeRef
from bot.core.messages import Choice, IncomingMessage, Outcome, Reply
from bot.core.review import ReviewItem, ReviewQueue, as_phrasing, entry_ref, question_ref, resolve_entry, search

if TYPE_CHECKING:
    from bot.core.ports import Clock

NOT_A_MODERATOR = "Sorry, the /faq commands are for the club's moderators."
SUBCOMMANDS = ("review", "add", "edit", "phrase", "remove-phrase", "show", "find", "history", "undo")
USAGE = (
    "/faq review – the most asked questions I couldn't answer, one at a time, to map to an entry\n"
    "/faq show ENTRY – an entry's phrasings, answer and source\n"
    "/faq find WORDS – entries by id or title\n"
    "/faq phrase ENTRY \"text\" – add a phrasing\n"
    "/faq remove-phrase ENTRY N|\"text\" – remove a phrasing (N as numbered by /faq show)\n"
    "/faq add – a new entry; /faq edit ENTRY – change one (a form on Discord, a few questions on Telegram)\n"
    "/faq history [ENTRY] – changes made from the chat; /faq undo – revert your last one"
)
NO_FORM = (
    "Here I can't show a form. Add phrasings with /faq phrase ENTRY \"text\", remove them with /faq remove-phrase; "
    "for a new entry or a new answer use /faq add or /faq edit on Discord or Telegram, or `runbot faq add` in a "
    "terminal."
)
_QUOTES = "\"'“”‘’«»"


def moderator(msg: IncomingMessage) -> Moderator:
    return Moderator(msg.platform, msg.user_id, msg.display_name or msg.user_id)


def split_args(args: str) -> tuple[str, str]:
    """'overstriding "does stride length matter"' -> ('overstriding', 'does stride length matter')."""
    head, _, rest = args.strip().partition(" ")
    return head.strip(), rest.strip().strip(_QUOTES).strip()


def payload(action: str, *fields: object) -> str:
    """A ``mod:`` button payload, built by the one codec (``bot.core.payloads``: at most 64 bytes)."""
    return payloads.moderation(action, *fields)


@dataclass(frozen=True, slots=True)
class Form:
    """What a form shows: the entry's current fields (empty for a new entry) and where the answer goes."""

    entry_id: str | None
    title: str
    questions: tuple[str, ...]
    answer: str
    source: str


class ModeratorDesk:
    """Moderator commands and buttons in words and ``Reply`` objects; changes go through the ``FaqEditor``."""

    def __init__(self, editor: FaqEditor, queue: ReviewQueue, knowledge: KnowledgeRef, clock: Clock) -> None:
        self.editor = editor
        self.queue = queue
        self.knowledge = knowledge
        self.clock = clock

    # ------------------------------------------------------------------ commands
    async def command(self, msg: IncomingMessage, sub: str, args: str) -> Outcome:
        private = not msg.is_private
        if not msg.is_moderator:
            return _out(Reply(NOT_A_MODERATOR, private=private))
        k = self.knowledge.current
        if sub == "review":
            return _out(*await self.card(msg, 0))
        if sub in ("add", "edit"):
            hint = NO_FORM
            if sub == "edit" and args.strip():
                hint += f"\n\n/faq show {args.strip()} shows the entry as it is."
            return _out(Reply(hint, private=private))
        if sub == "find":
            found = search(k, args, limit=8)
            if not found:
                return _out(Reply(f"No entry matches “{args.strip()}”.", private=private))
            lines = ["Entries:"] + [f"• {e.id} – {e.title} ({e.file})" for e in found]
            return _out(Reply("\n".join(lines), private=private))
        if sub == "history":
            return _out(Reply(await self.history_text(args.strip() or None), private=private))
        if sub == "undo":
            return _out(*self._result(msg, await self.editor.undo(moderator(msg))))
        entry_text, text = split_args(args)
        entry = self.entry(entry_text)
        if entry is None:
            if not entry_text:
                return _out(Reply(USAGE, private=private))
            return _out(Reply(self._no_entry(entry_text), private=private))
        if sub == "show":
            return _out(self.show(entry, private))
        if not text:
            return _out(Reply(f"Say the phrasing too: /faq {sub} {entry.id} \"text\"", private=private))
        if sub == "phrase":
            return _out(*self._result(msg, await self.editor.add_phrasing(moderator(msg), entry.id, text)))
        if text.isdigit() and 1 <= int(text) <= len(entry.questions):
            text = entry.questions[int(text) - 1]
        return _out(*self._result(msg, await self.editor.remove_phrasing(moderator(msg), entry.id, text)))

    def entry(self, text: str) -> FaqEntry | None:
        """An entry named by its id (or by words of its title that fit one entry only)."""
        k = self.knowledge.current
        if not text:
            return None
        found = resolve_entry(k, text.strip().lower())
        if found is not None:
            return found
        hits = search(k, text, limit=2)
        return hits[0] if len(hits) == 1 and text.lower() in hits[0].title.lower() else None

    def _no_entry(self, text: str) -> str:
        close = search(self.knowledge.current, text, limit=3)
        maybe = f" Did you mean {', '.join(e.id for e in close)}?" if close else ""
        return f"There is no entry '{text[:60]}'.{maybe} /faq find WORDS lists entries."

    def show(self, entry: FaqEntry, private: bool) -> Reply:
        lines = [f"'{entry.id}' – {entry.title} ({entry.file}:{entry.line})", "Phrasings:"]
        lines += [f"{i:>3}. {q}" for i, q in enumerate(entry.questions, 1)]
        lines += ["Answer:", entry.answer.strip(), f"Source: {entry.source or '(none)'}"]
        return Reply("\n".join(lines), choices=(Choice("Edit", payload("ed", entry_ref(entry.id))),), private=private)

    async def history_text(self, entry_id: str | None) -> str:
        changes = await self.editor.history(entry_id, limit=15)
        if not changes:
            return "No changes from the chat yet" + (f" for '{entry_id}'." if entry_id else ".")
        lines = ["Changes made from the chat, newest first:"]
        for c in changes:
            undone = f" (undone by #{c.undone_by})" if c.undone_by else ""
            lines.append(f"#{c.id} {c.at:%Y-%m-%d %H:%M} {c.moderator.name} ({c.moderator.platform}): "
                         f"{c.summary}{undone}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ the review queue
    async def card(self, msg: IncomingMessage, position: int) -> tuple[Reply, ...]:
        item = await self.queue.item(self.knowledge.current, position)
        private = not msg.is_private
        if item is None:
            return (Reply("The review queue is empty: no unanswered questions waiting. 🎉", private=private),)
        return (self.card_reply(item, private),)

    @staticmethod
    def card_reply(item: ReviewItem, private: bool) -> Reply:
        similar = f", +{item.variants - 1} similar wording(s)" if item.variants > 1 else ""
        text = (
            f"Review {item.position + 1} of {item.total} – asked {item.count} time(s){similar}, last on "
            f"{item.last_seen:%Y-%m-%d}:\n“{item.phrasing}”\n"
            "Add it as a phrasing of an entry (the bot answers it from then on), make a new entry, or mark it as "
            "not for the bot."
        )
        n, ref = item.position, item.ref
        choices = [Choice(f"Add to: {e.title}", payload("ph", n, ref, entry_ref(e.id))) for e in item.suggestions]
        choices += [
            Choice("Another entry…", payload("oth", n, ref)),
            Choice("New entry", payload("new", n, ref)),
            Choice("Not for the bot", payload("ign", n, ref)),
            Choice("Skip", payload("rv", n + 1)),
        ]
        return Reply(text, choices=tuple(choices), private=private)

    async def question(self, ref: str) -> str | None:
        """The phrasing a review button's question group stands for."""
        group = await self.queue.find(self.knowledge.current, ref)
        return as_phrasing(group["text"]) if group is not None else None

    def search_reply(self, query: str, position: int, ref: str, private: bool) -> Reply:
        """Buttons for the entries that match ``query``, to add the question ``ref`` to one of them."""
        found = search(self.knowledge.current, query)
        if not found:
            return Reply(f"No entry matches “{query.strip()[:60]}”. Try other words, or /faq find.",
                         choices=(Choice("Back to the question", payload("rv", position)),), private=private)
        choices = tuple(Choice(f"Add to: {e.title} ({e.id})"[:80], payload("ph", position, ref, entry_ref(e.id)))
                        for e in found)
        return Reply("Which entry?", choices=(*choices, Choice("Back to the question", payload("rv", position))),
                     private=private)

    # ------------------------------------------------------------------ buttons
    async def choice(self, msg: IncomingMessage, fields: tuple[str, ...]) -> Outcome:
        """A pressed review-queue button; ``fields`` (action first) as ``payloads.decode`` checked them."""
        private = not msg.is_private
        if not msg.is_moderator:
            return _out(Reply(NOT_A_MODERATOR, private=private))
        action, args = fields[0], list(fields[1:])
        k = self.knowledge.current
        if action == "rv":
            return _out(*await self.card(msg, int(args[0])))
        if action == "undo":
            return _out(*self._result(msg, await self.editor.undo(moderator(msg), expect=int(args[0]))))
        if action == "ed":
            entry = resolve_entry(k, args[0]) if args else None
            return _out(Reply(NO_FORM if entry else "That entry no longer exists.", private=private))
        if action == "cht":
            position, ref = 0, args[0] if args else ""
        else:
            position, ref = int(args[0]), args[1] if len(args) > 1 else ""
        group = await self.queue.find(k, ref)
        if group is None:
            gone = Reply("That question is no longer in the unanswered log.", private=private)
            return _out(gone, *await self.card(msg, position))
        text = as_phrasing(group["text"])
        if action == "ph":
            entry = resolve_entry(k, args[2]) if len(args) > 2 else None
            if entry is None:
                return _out(Reply("That entry no longer exists.", private=private), *await self.card(msg, position))
            result = await self.editor.add_phrasing(moderator(msg), entry.id, text)
            replies = self._result(msg, result)
            return _out(*replies, *await self.card(msg, position))  # the next question, or this one again
        if action == "ign":
            await self.queue.ignore(group["text"], self.clock.now())
            note = Reply(f"OK: “{text}” is not for the bot; it won't come up in the review again. Should the bot also "
                         "stay quiet on messages like it (club chatter)?",
                         choices=(Choice("Add it to chatter.yaml", payload("cht", ref)),), private=private)
            return _out(note, *await self.card(msg, position))
        if action == "cht":
            return _out(*self._result(msg, await self.editor.add_chatter(moderator(msg), text)))
        if action == "oth":
            return _out(Reply(f"Send /faq find WORDS to look for the entry, then /faq phrase ENTRY \"{text}\".",
                              private=private))
        return _out(Reply(f"{NO_FORM}\nThe question: “{text}”", private=private))  # "new" without a form

    # ------------------------------------------------------------------ forms (Discord modals, Telegram steps)
    def form(self, entry_id: str | None) -> Form | None:
        if entry_id is None:
            return Form(None, "", (), "", "")
        entry = resolve_entry(self.knowledge.current, entry_id)
        if entry is None:
            return None
        return Form(entry.id, entry.title, entry.questions, entry.answer.strip(), entry.source or "")

    async def add_entry(self, msg: IncomingMessage, fields: EntryFields) -> tuple[Reply, ...]:
        if not msg.is_moderator:
            return (Reply(NOT_A_MODERATOR, private=not msg.is_private),)
        return self._result(msg, await self.editor.add_entry(moderator(msg), fields))

    async def edit_entry(self, msg: IncomingMessage, entry_id: str, fields: EntryFields) -> tuple[Reply, ...]:
        if not msg.is_moderator:
            return (Reply(NOT_A_MODERATOR, private=not msg.is_private),)
        return self._result(msg, await self.editor.edit_entry(moderator(msg), entry_id, fields))

    def _result(self, msg: IncomingMessage, result: EditResult) -> tuple[Reply, ...]:
        private = not msg.is_private
        if not result.ok:
            return (Reply(("❌ " if result.message.startswith("Not ") else "") + result.message, private=private),)
        entry = self.knowledge.current.entries.get(result.entry_id or "")
        where = "" if entry is None else f" ({entry.title})" if entry.file in result.message else (
            f" ({entry.title}, {entry.file})")
        then = "The file is back as it was." if result.action == "undo" else "The bot uses it from now on."
        text = f"✅ #{result.change_id}: {_first_upper(result.message)}{where}. {then}"
        if result.notes:
            text += "\nNote:\n" + "\n".join(f"• {n}" for n in result.notes)
        undoable = result.change_id and result.action != "undo"
        choices = (Choice("Undo", payload("undo", result.change_id)),) if undoable else ()
        return (Reply(text, choices=choices, private=private),)


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _out(*replies: Reply) -> Outcome:
    return Outcome(tuple(replies), "command")


def parse_sub(args: str) -> tuple[str, str]:
    """'/faq remove-phrase x 2' args -> ('remove-phrase', 'x 2'); the subcommand lowercased."""
    words = args.strip().split(maxsplit=1)
    return (words[0].lower() if words else ""), (words[1] if len(words) > 1 else "")


__all__ = ["SUBCOMMANDS", "Form", "ModeratorDesk", "moderator", "parse_sub", "payload", "question_ref"]
