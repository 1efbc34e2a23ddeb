"""Helpers for tests (importable as `support`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

from bot.core.messages import IncomingMessage

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
DATA = Path(__file__).resolve().parent / "data"


def dm(text: str = "", *, user: str = "u1", choice: str | None = None, platform: str = "test") -> IncomingMessage:
    """A private message (or a pressed button when ``choice`` is given)."""
    return IncomingMessage(platform, user, f"chat-{user}", text=text, choice=choice, is_private=True)


def group(text: str, *, user: str = "u1", name: str = "Sam") -> IncomingMessage:
    """A message in a club group chat."""
    return IncomingMessage("test", user, "club-chat", text=text, is_private=False, display_name=name)
