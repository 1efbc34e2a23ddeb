"""Shared fixtures: the shipped knowledge, a runtime on a real SQLite file in a temp folder, a fake Telegram."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from memory_store import MemoryStore
from support import build_shipped

from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core.engine import EngineOptions
from bot.core.ports import ManualClock
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT, TELEGRAM_TOKEN


@pytest.fixture(autouse=True, scope="session")
def _one_tls_context() -> Iterator[None]:
    """The real Telegram clients here talk plain HTTP to fake Bot API servers on 127.0.0.1, yet httpx builds a TLS
    context (certifi's CA bundle: about 15 ms of CPU) for every client it makes, two per adapter start: 1.3 s of the
    fast tier. One default context, made once, serves them all (an SSLContext may be shared; nothing changes it)."""
    import httpx._transports.default as transport

    make = transport.create_ssl_context
    made: dict[bool, Any] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return make(verify=verify, cert=cert, trust_env=trust_env)
        if trust_env not in made:
            made[trust_env] = make(verify=verify, cert=cert, trust_env=trust_env)
        return made[trust_env]

    patch = pytest.MonkeyPatch()
    patch.setattr(transport, "create_ssl_context", shared)
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The FAQ embeddings' disk cache goes to a temp folder, not the home folder (child processes inherit it)."""
    before = os.environ.get("RUNBOT_CACHE_DIR")
    os.environ["RUNBOT_CACHE_DIR"] = str(tmp_path_factory.mktemp("runbot-cache"))
    yield
    if before is None:
        os.environ.pop("RUNBOT_CACHE_DIR", None)
    else:
        os.environ["RUNBOT_CACHE_DIR"] = before


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = build_shipped(Settings(), clock=clock, db_path=tmp_path / "runbot.db")
    async with rt:
        yield rt


@pytest.fixture
async def quiet_runtime(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Runtime]:
    """No first-time notice and no flood control: replies are only the answer."""
    options = EngineOptions(first_notice=False, rate_limit=False)
    rt = build_shipped(Settings(), clock=clock, db_path=tmp_path / "runbot.db", options=options)
    async with rt:
        yield rt


@pytest.fixture
async def memory_runtime(clock: ManualClock) -> AsyncIterator[Runtime]:
    """The unit tier: the engine on the shared shipped knowledge and an in-memory store (tests/memory_store.py), no
    first-time notice and no flood control."""
    options = EngineOptions(first_notice=False, rate_limit=False)
    async with build_shipped(Settings(), clock=clock, store=MemoryStore(clock), options=options) as rt:
        yield rt


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    """A fake Telegram Bot API server on 127.0.0.1 for the real python-telegram-bot client."""
    fake = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await fake.start()
    yield fake
    await fake.stop()
