"""Hot reload of the knowledge folder: validate first, keep the last good knowledge on errors, swap atomically."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.core.knowledge import KnowledgeError, load_knowledge

if TYPE_CHECKING:
    from bot.bootstrap import Runtime

log = logging.getLogger(__name__)
MAX_PROBLEMS_SHOWN = 15


class KnowledgeWatcher:
    """Polls the folder's file stamps (cheap, no extra dependency) and reloads when they change."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.path = runtime.knowledge_path
        self._stamp = self._fingerprint()
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = sorted(self.path.glob("*.y*ml"))
            return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        except OSError:
            return ()

    async def run(self) -> None:
        interval = self.runtime.settings.knowledge.poll_seconds
        while True:
            await asyncio.sleep(interval)
            stamp = await asyncio.to_thread(self._fingerprint)
            if stamp != self._stamp:
                self._stamp = stamp
                await self.reload_now()

    async def reload_now(self) -> str:
        """Load, validate, swap; returns what happened in words for moderators."""
        async with self._lock:
            self._stamp = await asyncio.to_thread(self._fingerprint)
            try:
                new = await asyncio.to_thread(load_knowledge, self.path)
            except KnowledgeError as exc:
                errors = [str(p) for p in exc.problems if p.severity == "error"]
                shown = errors[:MAX_PROBLEMS_SHOWN]
                more = f"\n… and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
                text = (
                    "⚠️ The knowledge files have errors, so I'm still serving the last good version:\n"
                    + "\n".join(shown) + more
                )
                log.warning("knowledge reload failed: %s", "; ".join(errors[:MAX_PROBLEMS_SHOWN]))
                if text != self.last_error:
                    self.last_error = text
                    await self._notify(text)
                return text
            except Exception as exc:  # a failed load never kills the process
                log.exception("knowledge reload crashed")
                return f"⚠️ Reload failed ({type(exc).__name__}); still serving the last good version."
            old = self.runtime.knowledge.current
            self.runtime.knowledge.swap(new)
            text = f"✅ Knowledge reloaded: {len(new.entries)} FAQ entries (version {new.version})."
            log.info("knowledge reloaded: version %s -> %s", old.version, new.version)
            if self.last_error is not None:
                self.last_error = None
                await self._notify(text)
            return text

    async def _notify(self, text: str) -> None:
        for adapter in self.runtime.adapters.values():
            notify = getattr(adapter, "notify_moderators", None)
            if notify is None:
                continue
            try:
                await notify(text)
            except Exception:
                log.exception("could not notify moderators on %s", adapter.platform)
