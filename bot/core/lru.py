"""A bounded least-recently-used mapping: the store's user cache keeps at most ``limit`` users in memory."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: users kept in memory per process; the rest are read from the database when they next write
USER_CACHE_LIMIT = 10_000


class LruCache(OrderedDict[K, V]):
    """``get`` and ``[key] = value`` mark an entry as recently used; past ``limit`` the least recent one goes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError("an LRU cache holds at least one entry")
        self.limit = limit

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        if key not in self:
            return default
        self.move_to_end(key)
        return super().__getitem__(key)

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)
