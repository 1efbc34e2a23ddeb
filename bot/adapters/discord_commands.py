"""The slash commands, each translated into the engine's command text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

#: ``run(interaction, engine_text, personal=..., moderator=...)`` — supplied by the adapter.
CommandRunner = Callable[..., Awaitable[None]]


def build_commands(run: CommandRunner) -> list[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    """The runbot command set. ``personal`` commands answer ephemerally in a server (they concern a person's health)."""

    @app_commands.command(name="ask", description="Ask a question about lower-back pain after running")
    @app_commands.describe(question="Your question, in your own words")
    async def ask(interaction: discord.Interaction[Any], question: app_commands.Range[str, 1, 1000]) -> None:
        await run(interaction, f"/ask {question}", personal=False)

    @app_commands.command(name="triage", description="Answer a few questions privately to find the right advice")
    async def triage(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/triage", personal=True)

    @app_commands.command(name="followups", description="Turn follow-up check-ins by direct message on or off")
    @app_commands.describe(state="on or off")
    @app_commands.choices(state=[app_commands.Choice(name="on", value="on"),
                                 app_commands.Choice(name="off", value="off")])
    async def followups(interaction: discord.Interaction[Any], state: app_commands.Choice[str]) -> None:
        await run(interaction, f"/followups {state.value}", personal=True)

    @app_commands.command(name="mydata", description="See what runbot has stored about you")
    async def mydata(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/mydata", personal=True)

    @app_commands.command(name="forget", description="Delete everything runbot has stored about you")
    async def forget(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/forget", personal=True)

    @app_commands.command(name="consent", description="See or withdraw your agreement to store health data")
    async def consent(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/consent", personal=True)

    @app_commands.command(name="help", description="What runbot can do")
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/help", personal=True)

    faq = app_commands.Group(name="faq", description="Moderator tools for the club's FAQ", guild_only=True)

    @faq.command(name="reload", description="Reload the knowledge files now")
    async def reload(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/faq reload", personal=True, moderator=True)

    @faq.command(name="unanswered", description="The most frequent questions runbot could not answer")
    async def unanswered(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/faq unanswered", personal=True, moderator=True)

    @faq.command(name="stats", description="Counts of questions, answers and escalations")
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, "/faq stats", personal=True, moderator=True)

    return [ask, triage, followups, mydata, forget, consent, help_, faq]
