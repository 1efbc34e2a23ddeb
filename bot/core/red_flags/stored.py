"""The built red-flag detector kept on disk between runs.

Building the detector from the catalogue's YAML (about 21,000 terms) is most of a start-up: about 0.2 s of a
one-shot ``runbot ask``, a CLI check or a restart. The built detector is kept in the cache folder (``RUNBOT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/runbot``, else ``~/.cache/runbot``) under a key made of the catalogue's bytes, the source of
``bot/core`` and the Python version, and read back in about 40 ms.

It is only a speed-up, and it must never weaken the safety net: a missing, stale, unreadable, foreign or damaged file
means building from the YAML again, as without the cache. The file is a pickle read by an unpickler that can make
nothing but ``bot.core`` classes and a few plain builtins (no function call, no import of anything else), and only
when the file belongs to this user and nobody else can write it. A detector read back must still raise its first
emergency example before it is used.
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import io
import logging
import os
import pickle
import sys
import tempfile
import threading
from functools import cache
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from bot.core.cachedir import cache_folder
from bot.core.red_flags.detector import RedFlagDetector

log = logging.getLogger(__name__)

#: bump when the file's layout changes in a way the source hash would not show
CACHE_VERSION = 1
#: detectors kept on disk: the newest few catalogue versions (each about 2.5 MB)
KEEP = 4
PREFIX = "red-flags-"
_PACKAGE = "bot.core."
_BUILTINS = frozenset({"set", "frozenset", "slice", "range", "complex", "bytearray", "object"})


def mapping_proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """A read-only mapping again (pickle cannot name ``mappingproxy`` itself)."""
    return MappingProxyType(items)


class _Pickler(pickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[MappingProxyType] = lambda proxy: (mapping_proxy, (dict(proxy),))


class _Unpickler(pickle.Unpickler):
    """Makes only ``bot.core`` classes, ``mapping_proxy`` and plain builtins: a file that names anything else (a
    function that runs a command, say) is refused, not obeyed."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "mapping_proxy":
            return mapping_proxy
        if module == "builtins" and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        if module.startswith(_PACKAGE) and module in sys.modules:
            found = getattr(sys.modules[module], name, None)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a cached detector")


class _GcPause:
    """Garbage collection paused while many small objects are made at once (building or reading a detector: a third
    of the build's time went to the collector finding nothing to free). Nested and threaded uses are counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()


gc_paused = _GcPause()


@cache
def _source_identity() -> bytes:
    """The hash of every module of ``bot/core`` (read once per process): any change of the code that builds or runs
    the detector gives a new key, so a detector built by other code is never read."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{CACHE_VERSION}\0{sys.version}\0{pickle.HIGHEST_PROTOCOL}".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.digest()


def _path(content_key: bytes) -> Path:
    return cache_folder() / f"{PREFIX}{hashlib.sha256(_source_identity() + content_key).hexdigest()[:32]}.pickle"


def load(content_key: bytes) -> RedFlagDetector | None:
    """The detector stored for these catalogue bytes by this code, or None (build it)."""
    try:
        path = _path(content_key)
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                log.warning("ignoring %s: it is not this user's own file, or others can write it", path)
                return None
            data = f.read()
        with gc_paused:
            found = _Unpickler(io.BytesIO(data)).load()
    except FileNotFoundError:
        return None
    except Exception as exc:  # damaged, truncated, foreign: build again (and the next save replaces it)
        log.info("the stored red-flag detector could not be read (%s): building it", type(exc).__name__)
        return None
    if not isinstance(found, RedFlagDetector) or not _works(found):
        log.warning("the stored red-flag detector failed its check: building it again")
        return None
    return found


def _works(detector: RedFlagDetector) -> bool:
    """Its first emergency example still raises that emergency (a cheap proof the file is the whole detector)."""
    try:
        for category in detector.categories.values():
            if category.level == "emergency" and category.examples:
                hit = detector.detect(category.examples[0])
                return hit is not None and hit.level == "emergency"
    except Exception:
        return False
    return False


def save(content_key: bytes, detector: RedFlagDetector) -> None:
    """Keep the detector for the next start (written whole then renamed: a reader never sees half a file); the
    oldest beyond ``KEEP`` are removed. Failing to write only costs building it again next time."""
    try:
        path = _path(content_key)
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(detector)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{PREFIX}", suffix=".pickle", delete=False) as f:
            f.write(buffer.getvalue())
        os.chmod(f.name, 0o600)
        os.replace(f.name, path)
        old = sorted(folder.glob(f"{PREFIX}*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[KEEP:]:
            stale.unlink(missing_ok=True)
    except Exception as exc:  # only a speed-up: no cache folder (no home), a full disk, ... never break a load
        log.info("the red-flag detector was not stored (%s): it is built again next time", exc)
