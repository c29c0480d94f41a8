"""A bounded table of per-key state that drops the least recently used key.

Per-speaker state (cue baselines, speaker moments) must stay at constant memory in a daemon that meets ever new
speakers for months; this is the one place that bound is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class LruTable(Mapping[str, V], Generic[V]):
    """Values by key, at most ``capacity`` of them. Reading with ``[]`` does not count as use; :meth:`use` does."""

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"the capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()

    def use(self, key: str, create: Callable[[], V]) -> V:
        """The value of ``key`` (made by ``create`` for a new key), now the most recently used; beyond the
        capacity the least recently used key is dropped."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = create()
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def forget(self, key: str) -> None:
        """Drop ``key`` if present (e.g. a stream that ended), so a later one under the same key starts afresh."""
        self._items.pop(key, None)

    def __getitem__(self, key: str) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
