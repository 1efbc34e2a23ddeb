"""Discord forms for the moderators' FAQ editing (issue 17): the /faq subcommands beyond reload/unanswered/stats, and
the modals (discord.ui.Modal) that add or edit an entry or search for one from the review queue.

A modal has to be the very first answer to an interaction, so the buttons that open one (``mod:new``, ``mod:ed``,
``mod:oth``) are taken here before the adapter defers the click; everything else goes to the engine as usual. Every
form checks the moderator role again when it is submitted, and every answer is ephemeral."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.adapters.discord_support import PLATFORM, DiscordBase, shown_name
from bot.core import payloads
from bot.core.faq_editing import EntryFields
from bot.core.knowledge import MAX_TITLE
from bot.core.messages import IncomingMessage, Reply
from bot.core.payloads import Kind

if TYPE_CHECKING:
    from bot.core.moderation import Form, ModeratorDesk

log = logging.getLogger(__name__)

#: Discord's limits: a text input holds at most 4,000 characters, a modal's title 45
INPUT_LIMIT = 4000
MODAL_TITLE = 45
NOT_A_MODERATOR = (
    "Sorry, the /faq commands are for the club's moderators (a moderator role or the Manage Server permission)."
)
#: ``run(interaction, engine_text, personal=..., moderator=...)`` — the adapter's slash-command runner
CommandRunner = Callable[..., Awaitable[None]]


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class EntryModal(discord.ui.Modal):
    """Title, phrasings (one per line), answer and source of a new or an existing entry."""

    def __init__(self, forms: DiscordFaqForms, form: Form, first_phrasing: str = "") -> None:
        name = f"Edit {form.entry_id}" if form.entry_id else "New FAQ entry"
        super().__init__(title=name[:MODAL_TITLE], timeout=900)
        self.forms, self.entry_id = forms, form.entry_id
        questions = "\n".join(form.questions) if form.questions else first_phrasing
        # a box holds 4,000 characters: a longer value is not shown (a cut one would lose what is cut when saved)
        self.answer_too_long = len(form.answer) > INPUT_LIMIT
        self.questions_too_long = len(questions) > INPUT_LIMIT
        self.title_input: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Title (shown on buttons)", custom_id="title", default=form.title or None, max_length=MAX_TITLE,
            required=form.entry_id is None)
        self.questions: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Phrasings: how runners ask it, one per line", custom_id="questions",
            style=discord.TextStyle.paragraph, max_length=INPUT_LIMIT, required=not self.questions_too_long,
            default=None if self.questions_too_long else (questions or None),
            placeholder="(longer than a form holds: leave empty to keep them)" if self.questions_too_long else None)
        self.answer: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Answer", custom_id="answer", style=discord.TextStyle.paragraph, max_length=INPUT_LIMIT,
            default=None if self.answer_too_long else (form.answer or None), required=not self.answer_too_long,
            placeholder="(longer than a form holds: leave empty to keep it)" if self.answer_too_long else None)
        self.source: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Source (a public reference with its address)", custom_id="source",
            style=discord.TextStyle.paragraph, default=form.source or None, required=False, max_length=1000)
        for item in (self.title_input, self.questions, self.answer, self.source):
            self.add_item(item)

    def fields(self) -> EntryFields:
        answer = self.answer.value.strip()
        return EntryFields(
            title=self.title_input.value.strip(),
            questions=None if (self.questions_too_long and not self.questions.value.strip()) else _lines(
                self.questions.value),
            answer=None if (self.answer_too_long and not answer) else answer,
            source=self.source.value.strip(),
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.forms.submitted(interaction, self)


class SearchModal(discord.ui.Modal):
    """"Another entry…" from the review queue: an id or words of a title."""

    def __init__(self, forms: DiscordFaqForms, position: int, ref: str) -> None:
        super().__init__(title="Add the question to which entry?", timeout=900)
        self.forms, self.position, self.ref = forms, position, ref
        self.query: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Entry id or words of its title", custom_id="query", max_length=100)
        self.add_item(self.query)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.forms.searched(interaction, self)


class DiscordFaqForms:
    """The moderators' slash commands and modals, on behalf of one adapter."""

    def __init__(self, desk: ModeratorDesk, adapter: DiscordBase) -> None:
        self.desk = desk
        self.adapter = adapter

    # ------------------------------------------------------------------ commands
    def extend(self, commands: Sequence[Any], run: CommandRunner) -> None:
        """Add the editing subcommands to the /faq group among ``commands``."""
        group = next(c for c in commands if isinstance(c, app_commands.Group) and c.name == "faq")

        async def engine(interaction: discord.Interaction[Any], text: str) -> None:
            await run(interaction, text, personal=True, moderator=True)

        @group.command(name="review", description="Unanswered questions, one at a time, to map to entries")
        async def review(interaction: discord.Interaction[Any]) -> None:
            await engine(interaction, "/faq review")

        @group.command(name="show", description="An entry's phrasings, answer and source")
        @app_commands.describe(entry="The entry's id")
        async def show(interaction: discord.Interaction[Any], entry: app_commands.Range[str, 1, 80]) -> None:
            await engine(interaction, f"/faq show {entry}")

        @group.command(name="find", description="Entries by id or words of their title")
        async def find(interaction: discord.Interaction[Any], words: app_commands.Range[str, 1, 100]) -> None:
            await engine(interaction, f"/faq find {words}")

        @group.command(name="phrase", description="Add a phrasing to an entry")
        @app_commands.describe(entry="The entry's id", text="How a runner asks it")
        async def phrase(interaction: discord.Interaction[Any], entry: app_commands.Range[str, 1, 80],
                         text: app_commands.Range[str, 1, 300]) -> None:
            await engine(interaction, f'/faq phrase {entry} "{text}"')

        @group.command(name="remove-phrase", description="Remove a phrasing from an entry")
        @app_commands.describe(entry="The entry's id", phrasing="Its number in /faq show, or the phrasing")
        async def remove_phrase(interaction: discord.Interaction[Any], entry: app_commands.Range[str, 1, 80],
                                phrasing: app_commands.Range[str, 1, 300]) -> None:
            await engine(interaction, f'/faq remove-phrase {entry} "{phrasing}"')

        @group.command(name="history", description="Changes made from the chat")
        @app_commands.describe(entry="Only this entry's changes")
        async def history(interaction: discord.Interaction[Any], entry: str | None = None) -> None:
            await engine(interaction, f"/faq history {entry or ''}".strip())

        @group.command(name="undo", description="Revert your last change")
        async def undo(interaction: discord.Interaction[Any]) -> None:
            await engine(interaction, "/faq undo")

        @group.command(name="add", description="A new FAQ entry (opens a form)")
        async def add(interaction: discord.Interaction[Any]) -> None:
            await self.open_entry(interaction, None)

        @group.command(name="edit", description="Change an entry's title, phrasings, answer or source (a form)")
        @app_commands.describe(entry="The entry's id")
        async def edit(interaction: discord.Interaction[Any], entry: app_commands.Range[str, 1, 80]) -> None:
            await self.open_entry(interaction, entry)

    # ------------------------------------------------------------------ opening forms
    def _is_moderator(self, interaction: discord.Interaction[Any]) -> bool:
        return interaction.guild_id is not None and self.adapter._is_moderator(interaction.user,
                                                                               interaction.permissions)

    async def _say(self, interaction: discord.Interaction[Any], text: str) -> None:
        try:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=_NO_MENTIONS)
        except discord.HTTPException as exc:
            self.adapter._report("faq form", exc)

    async def open_entry(self, interaction: discord.Interaction[Any], entry: str | None,
                         first_phrasing: str = "") -> None:
        if not self._is_moderator(interaction):
            await self._say(interaction, NOT_A_MODERATOR)
            return
        found = self.desk.entry(entry) if entry else None
        form = self.desk.form(found.id if found else None)
        if (entry and found is None) or form is None:
            await self._say(interaction, f"There is no entry '{(entry or '')[:60]}'. /faq find WORDS lists entries.")
            return
        try:
            await interaction.response.send_modal(EntryModal(self, form, first_phrasing))
        except discord.HTTPException as exc:
            self.adapter._report("faq form", exc)

    async def intercept(self, interaction: discord.Interaction[Any], payload: str) -> bool:
        """Open a form for a button that needs one; False for every other button (the adapter handles it)."""
        decoded = payloads.decode(payload)
        if decoded is None or decoded.kind is not Kind.MODERATION:
            return False
        parts = [decoded.kind.value, *decoded.args]
        if len(parts) < 3 or parts[1] not in ("new", "ed", "oth"):
            return False
        if not self._is_moderator(interaction):
            await self._say(interaction, NOT_A_MODERATOR)
            return True
        if parts[1] == "ed":
            await self.open_entry(interaction, parts[2])
            return True
        if len(parts) < 4 or not parts[2].isdigit():
            return False
        position, ref = int(parts[2]), parts[3]
        if parts[1] == "oth":
            try:
                await interaction.response.send_modal(SearchModal(self, position, ref))
            except discord.HTTPException as exc:
                self.adapter._report("faq form", exc)
            return True
        question = await self.desk.question(ref)
        if question is None:
            await self._say(interaction, "That question is no longer in the unanswered log.")
            return True
        await self.open_entry(interaction, None, first_phrasing=question)
        return True

    # ------------------------------------------------------------------ submitted forms
    def _incoming(self, interaction: discord.Interaction[Any]) -> IncomingMessage:
        return IncomingMessage(
            platform=PLATFORM, user_id=str(interaction.user.id), chat_id=str(interaction.channel_id),
            is_private=interaction.guild_id is None, display_name=shown_name(interaction.user),
            is_moderator=self._is_moderator(interaction),
        )

    async def _answer(self, interaction: discord.Interaction[Any], replies: Callable[[], Awaitable[Sequence[Reply]]]
                      ) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            self.adapter._report("faq form", exc)
            return
        try:
            out = await replies() if self._is_moderator(interaction) else (Reply(NOT_A_MODERATOR),)
            for reply in out:
                await self.adapter._send_followup(interaction, reply, True)
        except Exception as exc:
            self.adapter._report("faq form", exc)

    async def submitted(self, interaction: discord.Interaction[Any], modal: EntryModal) -> None:
        msg, fields = self._incoming(interaction), modal.fields()
        if modal.entry_id is None:
            await self._answer(interaction, lambda: self.desk.add_entry(msg, fields))
        else:
            entry_id = modal.entry_id
            await self._answer(interaction, lambda: self.desk.edit_entry(msg, entry_id, fields))

    async def searched(self, interaction: discord.Interaction[Any], modal: SearchModal) -> None:
        async def replies() -> Sequence[Reply]:
            return (self.desk.search_reply(modal.query.value, modal.position, modal.ref, private=True),)

        await self._answer(interaction, replies)


_NO_MENTIONS = discord.AllowedMentions.none()
