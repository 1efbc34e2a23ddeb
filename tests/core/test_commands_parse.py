"""The one command parser, as every adapter and the engine read a command."""

from __future__ import annotations

import pytest

from bot.core.commands_parse import Command, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Ask@runbot why does it hurt?", Command("ask", "why does it hurt?", "runbot")),
        ("  /help  ", Command("help", "")),
        ("/ask\nwhy?", Command("ask", "why?")),
        ("/faq  stats 7d", Command("faq", "stats 7d")),
    ],
)
def test_a_command_is_read_the_same_everywhere(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


def test_plain_text_is_not_a_command() -> None:
    assert parse_command("not /a command") is None
    assert parse_command("") is None


def test_only_plain_names_are_well_formed_or_repeated_back() -> None:
    link = parse_command("/[x](https://evil.example)")
    assert link is not None and not link.well_formed and not link.echoable
    assert not parse_command("/__x__").echoable  # type: ignore[union-attr]
    assert not parse_command("/ask@two@bots").well_formed  # type: ignore[union-attr]
    ok = parse_command("/follow_ups on")
    assert ok is not None and ok.well_formed and ok.echoable and ok.text == "/follow_ups on"
