"""A bounded, thread-safe LRU cache of recent predictions, with its hit rate."""

from __future__ import annotations

import collections
import copy
import threading
from typing import Callable, Hashable, Sequence


class PredictionCache:
    """Least-recently-used results by key, at most `capacity` of them (0 disables it).

    Results are deep-copied in and out, so a caller that edits an answer
    cannot change what the next caller gets.
    """

    def __init__(self, capacity: int = 1024):
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0; received {capacity}")
        self.capacity = capacity
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[Hashable], compute: Callable[[list[int]], list]) -> list:
        """The result for every key, computing only the missing ones (in one call, by index)."""
        results: list = [None] * len(keys)
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                if self.capacity and key in self._items:
                    self._items.move_to_end(key)
                    results[i] = copy.deepcopy(self._items[key])
                    self.hits += 1
                else:
                    missing.append(i)
            self.misses += len(missing)
        if missing:
            computed = compute(missing)
            with self._lock:
                for i, value in zip(missing, computed):
                    results[i] = value
                    if self.capacity:
                        self._items[keys[i]] = copy.deepcopy(value)
                        self._items.move_to_end(keys[i])
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return results

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def info(self) -> dict:
        with self._lock:
            lookups = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses, "size": len(self._items),
                    "capacity": self.capacity, "hit_rate": self.hits / lookups if lookups else 0.0}
