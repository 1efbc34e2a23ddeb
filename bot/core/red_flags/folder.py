"""Reading the red-flag catalogue folder of a knowledge folder, and the cache of detectors built from it."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.core.lru import LruCache
from bot.core.red_flags import stored
from bot.core.red_flags.detector import RedFlagDetector
from bot.core.red_flags.learned import MODEL_FILE, parse_learned
from bot.core.red_flags.loader import parse_red_flag_docs
from bot.core.red_flags.stored import gc_paused
from bot.core.yamlio import Problem, YamlError, load_bytes, read_bytes

if TYPE_CHECKING:
    from hashlib import _Hash

RED_FLAGS_DIR = "red_flags"
#: read first: the context vocabulary, then the concepts shared by several categories
RED_FLAGS_FIRST = ("context.yaml", "shared.yaml")
MODEL_NAME = f"{RED_FLAGS_DIR}/{MODEL_FILE}"


class Folder(Protocol):
    """The knowledge folder being read: its path, the digest of what was read, the problems found."""

    root: Path
    digest: _Hash
    problems: list[Problem]


def read_catalogue(folder: Folder) -> RedFlagDetector | None:
    """The catalogue folder: context.yaml, shared.yaml, then one file per category, and the learned check's model.
    Built once per content: loading the knowledge again with these files unchanged (a reload after an FAQ change, a
    moderator's change checked on a copy of the folder) reuses the detector, most of a load's time."""
    root = folder.root / RED_FLAGS_DIR
    if not root.is_dir():
        folder.problems.append(Problem(RED_FLAGS_DIR, 1, "the red-flag catalogue folder is missing"))
        return None
    names = [n for n in RED_FLAGS_FIRST if (root / n).exists()]
    names += sorted(p.name for p in root.glob("*.yaml") if p.name not in RED_FLAGS_FIRST)
    files: list[tuple[str, bytes]] = []
    for name in names:
        display = f"{RED_FLAGS_DIR}/{name}"
        try:
            files.append((display, read_bytes(root / name, display)))
        except YamlError as exc:
            folder.problems.append(exc.problem)
            return None
    model: bytes | Problem | None = None
    if (root / MODEL_FILE).exists():
        try:
            model = read_bytes(root / MODEL_FILE, MODEL_NAME)
        except YamlError as exc:
            model = exc.problem  # reported only when the catalogue itself loads
    content = hashlib.sha256()  # what the detector is built from: its key in the cache
    for display, raw in [*files, (MODEL_NAME, model)] if isinstance(model, bytes) else files:
        folder.digest.update(display.encode() + b"\0" + raw)
        content.update(display.encode() + b"\0" + len(raw).to_bytes(8, "big") + raw)
    if isinstance(model, Problem):
        content.update(str(model).encode())
    key = content.digest()
    with _CATALOGUES_LOCK:  # loads run in threads (the watcher's reload, a moderator's change being checked)
        built = _CATALOGUES.get(key)
    if built is None:
        built = _read_or_build(key, files, model)
        with _CATALOGUES_LOCK:
            _CATALOGUES[key] = built
    detector, problems = built
    folder.problems.extend(problems)
    return detector


#: the last two red-flag detectors built (about 10 MB each), by the bytes of their files: the one being served, and
#: one more (a change being checked, or the one before an edit of the catalogue); a detector never changes once built
_CATALOGUES: LruCache[bytes, tuple[RedFlagDetector | None, tuple[Problem, ...]]] = LruCache(2)
_CATALOGUES_LOCK = threading.Lock()


def _read_or_build(
    key: bytes, files: list[tuple[str, bytes]], model: bytes | Problem | None
) -> tuple[RedFlagDetector | None, tuple[Problem, ...]]:
    """The detector stored on disk for these bytes (``stored``), else built and stored; a catalogue with problems is
    built every time (its problems are reported each time)."""
    found = stored.load(key)
    if found is not None:
        return found, ()
    with gc_paused:
        built = _build(files, model)
    if built[0] is not None and not built[1]:
        stored.save(key, built[0])
    return built


def _build(
    files: list[tuple[str, bytes]], model: bytes | Problem | None
) -> tuple[RedFlagDetector | None, tuple[Problem, ...]]:
    """The detector of the catalogue's files and the learned check's model (bytes, the problem reading it, or None
    when there is none), and the problems found."""
    docs = []
    for name, raw in files:
        try:
            docs.append((name, load_bytes(raw, name)))
        except YamlError as exc:
            return None, (exc.problem,)
    detector, found = parse_red_flag_docs(docs)
    problems = tuple(found)
    if detector is None or model is None:
        return detector, problems
    if isinstance(model, Problem):
        return None, (*problems, model)
    try:
        learned, problem = parse_learned(json.loads(model), detector.categories)
    except ValueError as exc:
        learned, problem = None, f"the learned-check model is not valid JSON ({exc})"
    if problem is not None:
        return None, (*problems, Problem(MODEL_NAME, 1, problem))
    return detector.with_learned(learned), problems
