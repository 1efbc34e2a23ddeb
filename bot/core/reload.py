"""Hot reload of the knowledge folder: validate first, keep the last good knowledge on errors, swap atomically."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.core.knowledge import Knowledge, KnowledgeError, KnowledgeRef, load_knowledge

log = logging.getLogger(__name__)
MAX_PROBLEMS_SHOWN = 15
#: a change must stay still this long before it is loaded, so a save in progress is not read half-written
SETTLE_SECONDS = 0.25
#: give up waiting for a folder that keeps changing and load what is there (errors then keep the old version)
MAX_SETTLE_ROUNDS = 8


Snapshot = dict[str, bytes]
#: the YAML files of a knowledge folder: the top level and the red-flag catalogue folder
SNAPSHOT_GLOBS = ("*.y*ml", "red_flags/*.y*ml", "red_flags/*.json")


def snapshot(path: Path) -> Snapshot:
    """The bytes of every YAML file in the folder, read once (hidden files such as editors' temp files skipped)."""
    out: Snapshot = {}
    try:
        files = sorted(f for pattern in SNAPSHOT_GLOBS for f in path.glob(pattern) if not f.name.startswith("."))
    except OSError:
        return out
    for f in files:
        try:
            out[f.relative_to(path).as_posix()] = f.read_bytes()
        except OSError:  # removed or replaced between glob and read: the next poll sees the new state
            continue
    return out


def digest(snap: Snapshot) -> str:
    """Content digest: catches same-size rewrites within one mtime tick, which a size+mtime check misses."""
    h = hashlib.sha256()
    for name in sorted(snap):
        h.update(name.encode() + b"\0" + snap[name] + b"\0\0")
    return h.hexdigest()


def fingerprint(path: Path) -> str:
    return digest(snapshot(path))


def load_snapshot(path: Path, snap: Snapshot) -> Knowledge:
    """Validate and build the knowledge from the bytes read, not from the folder, which may change meanwhile."""
    if not path.is_dir():
        return load_knowledge(path)  # the error names the real folder
    with tempfile.TemporaryDirectory(prefix="runbot-knowledge-") as scratch:
        root = Path(scratch)
        for name, data in snap.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        try:
            return load_knowledge(root)
        except KnowledgeError as exc:  # folder-level problems name the scratch copy: name the real folder
            fixed = [dataclasses.replace(p, file=str(path)) if p.file == str(root) else p for p in exc.problems]
            raise KnowledgeError(fixed) from None


class KnowledgeWatcher:
    """Polls the folder's contents (cheap for a few YAML files, no extra dependency) and reloads when they change."""

    def __init__(
        self,
        path: Path,
        knowledge: KnowledgeRef,
        notify: Callable[[str], Awaitable[None]],
        *,
        poll_seconds: float = 1.0,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        """Watch ``path``, swap ``knowledge`` when it changes and validates, tell the moderators through ``notify``
        (every platform's moderators' chat) about errors, their fix and removed entries."""
        self.path = path
        self.knowledge = knowledge
        self.notify = notify
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._stamp = fingerprint(self.path)
        self._lock = asyncio.Lock()
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0

    async def run(self) -> None:
        """Poll forever (cancel the task to stop); a failing poll or reload is logged, never fatal."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                stamp = await asyncio.to_thread(fingerprint, self.path)
                if stamp != self._stamp:
                    await self.reload_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("knowledge watcher: poll failed; trying again")

    async def _settled(self) -> Snapshot:
        """Read the folder until two reads ``settle_seconds`` apart agree (an editor or `cp` may still be writing)."""
        snap = await asyncio.to_thread(snapshot, self.path)
        for _ in range(MAX_SETTLE_ROUNDS):
            await asyncio.sleep(self.settle_seconds)
            again = await asyncio.to_thread(snapshot, self.path)
            if again == snap:
                break
            snap = again
        return snap

    async def reload_now(self) -> str:
        """Load, validate, swap; returns what happened in words for moderators (also the /faq reload reply)."""
        async with self._lock:
            snap = await self._settled()
            self._stamp = digest(snap)
            new: Knowledge | None = None
            try:
                new = await asyncio.to_thread(load_snapshot, self.path, snap)
                problem_text = ""
            except KnowledgeError as exc:
                problem_text = self._describe(exc)
            except Exception as exc:  # unreadable bytes, a full disk: never kill the bot
                log.warning("knowledge reload could not read the files", exc_info=True)
                problem_text = (
                    "⚠️ I couldn't read the knowledge files "
                    f"({type(exc).__name__}: {exc}), so I'm still serving the last good version."
                )
            if new is None:
                self.failures += 1
                log.warning("knowledge reload failed, keeping version %s: %s",
                            self.knowledge.current.version, problem_text.replace("\n", "; "))
                if problem_text != self.last_error:
                    self.last_error = problem_text
                    await self._notify(problem_text)
                return problem_text
            old = self.knowledge.current
            self.knowledge.swap(new)  # one assignment: a message in flight keeps the snapshot it took
            self.reloads += 1
            removed = sorted(set(old.entries) - set(new.entries))
            text = f"✅ Knowledge reloaded: {len(new.entries)} FAQ entries (version {new.version})."
            if removed:
                text += " Entries no longer there: " + ", ".join(removed[:MAX_PROBLEMS_SHOWN]) + "."
            log.info("knowledge reloaded: version %s -> %s%s", old.version, new.version,
                     f"; removed {', '.join(removed)}" if removed else "")
            if self.last_error is not None:
                self.last_error = None
                await self._notify(text + " The earlier errors are fixed.")
            elif removed:  # answers disappearing is never silent
                await self._notify(text)
            return text

    @staticmethod
    def _describe(exc: KnowledgeError) -> str:
        errors = [str(p) for p in exc.problems if p.severity == "error"]
        shown = errors[:MAX_PROBLEMS_SHOWN]
        more = f"\n… and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        return (
            "⚠️ The knowledge files have errors, so I'm still serving the last good version:\n"
            + "\n".join(shown) + more
        )

    async def _notify(self, text: str) -> None:
        try:
            await self.notify(text)
        except Exception:
            log.exception("could not notify the moderators")
