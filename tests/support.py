"""Helpers for tests (importable as `support`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import atexit
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.bootstrap import Runtime, build
from bot.config import RateLimitSettings, Settings
from bot.core import payloads
from bot.core.knowledge import Knowledge, load_knowledge
from bot.core.messages import IncomingMessage
from bot.core.ports import ManualClock
from bot.core.red_flags import RedFlagDetector

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
DATA = Path(__file__).resolve().parent / "data" / "dev"  # tuned on; blind sets are in data/blind
BLIND = DATA.parent / "blind"


@functools.cache
def shipped_knowledge() -> Knowledge:
    """The shipped knowledge folder, loaded once per test session (it is immutable)."""
    return load_knowledge(KNOWLEDGE)


def build_shipped(settings: Settings | None = None, **parts: Any) -> Runtime:
    """``bootstrap.build`` on the shipped knowledge, loaded once per test session (``shipped_knowledge``). A
    ``db_path`` that does not exist yet starts as ``new_database`` (a copy of a migrated file)."""
    db_path = parts.get("db_path")
    if db_path is not None and not _in_memory_or_server(str(db_path)) and not Path(db_path).exists():
        new_database(Path(db_path))
    return build(settings, knowledge_path=KNOWLEDGE, knowledge=shipped_knowledge(), **parts)


def _in_memory_or_server(location: str) -> bool:
    return location == ":memory:" or location.startswith(("postgresql:", "sqlite:"))


@functools.cache
def _migrated_database() -> Path:
    """An empty SQLite database with every migration applied, made once per test session by the real store."""
    from bot.storage.sqlite import SQLiteStore

    folder = Path(tempfile.mkdtemp(prefix="runbot-test-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "migrated.db"

    async def migrate() -> None:
        async with SQLiteStore(path):
            pass

    with ThreadPoolExecutor(1) as pool:  # callers may be inside a running event loop
        pool.submit(asyncio.run, migrate()).result()
    return path


def new_database(path: Path) -> Path:
    """A new SQLite database file at ``path`` as the store leaves one after its first start: a copy of a file
    migrated once per session. Migrating each test's new file cost about 10 ms a test, 3 s of the fast tier; the
    migrations themselves are tested in tests/storage (test_store, test_schema)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_database(), path)
    return path


def button(raw: str | None, kind: str, *fields: str) -> bool:
    """Whether the payload ``raw`` is a button of ``kind`` (``faq``, ``tri``, ``fu``...) whose fields begin with
    ``fields``: ``button(p, "fu", "yes")`` is a check-in offer's yes."""
    decoded = payloads.decode(raw)
    return decoded is not None and decoded.kind == kind and decoded.args[: len(fields)] == fields


def tier(detector: RedFlagDetector, text: str) -> tuple[str, str | None]:
    """What the red-flag detector makes of a message: ("alarm" | "check" | "none", the first category)."""
    found = detector.assess(text)
    if found.alarms:
        return "alarm", found.alarms[0].category
    if found.checks:
        return "check", found.checks[0].category
    return "none", None


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
    async with build_shipped(settings, clock=ManualClock(), db_path=db) as runtime:
        yield runtime


async def agree(runtime: Runtime, *users: str, platform: str = "test") -> None:
    """Record that ``users`` agreed to the current consent text (as if they pressed "Yes, I agree" earlier), for
    tests about what happens after consent; the consent flow itself is tested in tests/core/test_consent.py."""
    text = runtime.engine.knowledge.current.consent
    for user_id in users or ("u1",):
        user = await runtime.store.get_or_create_user(platform, user_id)
        await runtime.store.give_consent(user, text.version, text.sha256)


async def press_agree(engine: object, out: object, msg: IncomingMessage) -> object:
    """When ``out`` (the answer to ``msg``) is the consent question, press its "Yes, I agree" from the same chat and
    return what follows; any other outcome is returned as it is."""
    from dataclasses import replace

    from bot.core.messages import Outcome

    assert isinstance(out, Outcome)
    if out.kind != "consent":
        return out
    payload = next(c.payload for r in out.replies for c in r.choices if button(c.payload, "consent", "yes"))
    return await engine.handle(replace(msg, text="", choice=payload))  # type: ignore[attr-defined]


#: short, vague questions; the knowledge (and its FAQ model) decides which of them get a "did you mean"
VAGUE_CANDIDATES = (
    "hips",
    "sore back",
    "back pain",
    "is a standing desk good for runners",
    "stretch or ice",
    "core",
    "stretch",
    "shoes",
    "exercises",
    "hamstrings",
)


def vague_questions(k: Knowledge, count: int = 1) -> list[str]:
    """``count`` questions the shipped knowledge answers with "did you mean" (moderators and retraining change which
    ones, so tests do not hard-code them)."""
    from bot.config import Settings
    from bot.core.decision import decide

    m = Settings().matching
    found = [t for t in VAGUE_CANDIDATES if decide(k, t, m).kind == "did-you-mean"][:count]
    assert len(found) == count, f"only {found} of {VAGUE_CANDIDATES} get a 'did you mean' from the knowledge"
    return found
