"""Helpers for tests (importable as `support`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.bootstrap import Runtime, build
from bot.config import RateLimitSettings, Settings
from bot.core.messages import IncomingMessage
from bot.core.ports import ManualClock

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
DATA = Path(__file__).resolve().parent / "data" / "dev"  # tuned on; blind sets are in data/blind
BLIND = DATA.parent / "blind"


def dm(text: str = "", *, user: str = "u1", choice: str | None = None, platform: str = "test") -> IncomingMessage:
    """A private message (or a pressed button when ``choice`` is given)."""
    return IncomingMessage(platform, user, f"chat-{user}", text=text, choice=choice, is_private=True)


def group(text: str, *, user: str = "u1", name: str = "Sam") -> IncomingMessage:
    """A message in a club group chat."""
    return IncomingMessage("test", user, "club-chat", text=text, is_private=False, display_name=name)


@asynccontextmanager
async def real_runtime(db: Path) -> AsyncIterator[Runtime]:
    """The real engine, store and scheduler on the shipped knowledge and a SQLite file, flood control off (adapter
    tests click many buttons a second; flood control has its own tests)."""
    settings = Settings(rate_limit=RateLimitSettings(enabled=False))
    async with build(settings, clock=ManualClock(), knowledge_path=KNOWLEDGE, db_path=db) as runtime:
        yield runtime
