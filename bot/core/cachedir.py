"""The folder runbot keeps its start-up caches in (embedded FAQ phrasings, the built red-flag detector)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    """``RUNBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/runbot``, else ``~/.cache/runbot``. Only a speed-up: a missing,
    stale, broken or unwritable cache just means computing again."""
    explicit = os.environ.get("RUNBOT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runbot"
