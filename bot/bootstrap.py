"""The composition root: settings in; knowledge, store, engine and scheduler out. Every part can be passed in."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.core.embedding import availability, installed
from bot.core.engine import Engine, EngineOptions
from bot.core.faq_editing import FaqEditor
from bot.core.faq_git import GitCommitter
from bot.core.followups import Scheduler
from bot.core.knowledge import Knowledge, KnowledgeRef, load_knowledge
from bot.core.moderation import ModeratorDesk
from bot.core.ports import Adapter, Clock, SystemClock
from bot.core.reload import SETTLE_SECONDS, KnowledgeWatcher
from bot.core.review import ReviewQueue
from bot.core.store import Store
from bot.lint import check_change
from bot.storage import make_flood_control, make_moderation_log, make_seen_notices, make_store

log = logging.getLogger(__name__)

#: at shutdown, escalation bookkeeping still pending (a locked or full database) gets this long, then is dropped
DRAIN_SECONDS = 1.0


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
    #: the moderators' desk (review queue, in-chat editing); None when moderation.edit_from_chat is off
    moderation: ModeratorDesk | None = None
    adapters: dict[str, Adapter] = field(default_factory=dict)
    #: how long close() gives escalation bookkeeping still waiting for storage before dropping it
    drain_seconds: float = DRAIN_SECONDS

    async def start(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        dropped = await self.engine.bookkeeper.drain(self.drain_seconds)
        if dropped:
            log.warning("%d escalation log write(s) still waiting for the database at shutdown were dropped", dropped)
        await self.store.close()

    async def report_problem(self, text: str) -> None:
        """Tell the moderators of every started platform that has a moderators' chat (the log has it already)."""
        for adapter in list(self.adapters.values()):
            try:
                await adapter.notify_moderators(text)
            except Exception as exc:  # a platform that is down must not hide the problem from the others
                log.warning("%s: could not notify the moderators: %s", adapter.platform, exc)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter
        self.scheduler.adapters[adapter.platform] = adapter

    def knowledge_watcher(self, *, settle_seconds: float = SETTLE_SECONDS) -> KnowledgeWatcher:
        """The watcher of the knowledge folder, wired to this runtime's knowledge and moderators; ``/faq reload``
        uses it from now on."""
        watcher = KnowledgeWatcher(self.knowledge_path, self.knowledge, self.report_problem,
                                   poll_seconds=self.settings.knowledge.poll_seconds, settle_seconds=settle_seconds)
        self.engine.reloader = watcher.reload_now
        return watcher


def build(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    knowledge_path: str | Path | None = None,
    knowledge: Knowledge | None = None,
    db_path: str | Path | None = None,
    options: EngineOptions | None = None,
    lazy_embeddings: bool = False,
) -> Runtime:
    """Wire the core. Raises KnowledgeError when the knowledge folder is invalid (nothing to serve). ``knowledge``:
    serve this already loaded knowledge (of ``knowledge_path``) instead of loading the folder again (it is
    immutable, so tests share one). ``lazy_embeddings``: embed the FAQ phrasings at the first message that needs
    them rather than now (a one-shot ``ask`` whose message the words settle never loads them)."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    path = Path(knowledge_path or settings.knowledge.path)
    ref = KnowledgeRef(
        knowledge
        if knowledge is not None
        else load_knowledge(path, embeddings=settings.matching.embeddings, lazy=lazy_embeddings)
    )
    if settings.matching.embeddings and ref.current.vectors is None and not installed():
        log.info("FAQ embeddings off: %s", availability().reason)
    store = store or make_store(db_path or settings.database.url, clock=clock, pool_size=settings.database.pool_size)
    # flood control in memory, or through the database when several processes answer the same people (PostgreSQL)
    engine = Engine(ref, store, settings, clock=clock, options=options, flood=make_flood_control(store, settings))
    engine.notices.shared = make_seen_notices(store, settings.privacy.retention_days)
    scheduler = Scheduler(store, {}, settings.followups, clock)
    engine.waker = scheduler.wake
    desk = None
    if settings.moderation.edit_from_chat:
        log_ = make_moderation_log(store)
        git = GitCommitter(path, enabled=settings.moderation.git_commit)
        editor = FaqEditor(path, ref, log_, functools.partial(check_change, settings=settings), clock, git=git)
        desk = ModeratorDesk(editor, ReviewQueue(store, log_, settings.matching), ref, clock)
    engine.moderation = desk
    runtime = Runtime(settings, ref, path, store, engine, scheduler, clock, desk)
    store.on_problem = runtime.report_problem
    return runtime
