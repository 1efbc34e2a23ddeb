"""The composition root: settings in; knowledge, store, engine and scheduler out. Every part can be passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.core.engine import Engine, EngineOptions
from bot.core.followups import Scheduler
from bot.core.knowledge import KnowledgeRef, load_knowledge
from bot.core.ports import Adapter, Clock, SystemClock
from bot.storage.sqlite import Store


@dataclass
class Runtime:
    """The wired-up core. ``start()`` opens the store; ``close()`` closes it."""

    settings: Settings
    knowledge: KnowledgeRef
    knowledge_path: Path
    store: Store
    engine: Engine
    scheduler: Scheduler
    clock: Clock
    adapters: dict[str, Adapter] = field(default_factory=dict)

    async def start(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter
        self.scheduler.adapters[adapter.platform] = adapter


def build(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    knowledge_path: str | Path | None = None,
    db_path: str | Path | None = None,
    options: EngineOptions | None = None,
) -> Runtime:
    """Wire the core. Raises KnowledgeError when the knowledge folder is invalid (nothing to serve)."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    path = Path(knowledge_path or settings.knowledge.path)
    ref = KnowledgeRef(load_knowledge(path))
    store = store or Store(db_path or settings.database.path, clock=clock)
    engine = Engine(ref, store, settings, clock=clock, options=options)
    scheduler = Scheduler(store, {}, settings.followups, clock)
    engine.waker = scheduler.wake
    return Runtime(settings, ref, path, store, engine, scheduler, clock)
