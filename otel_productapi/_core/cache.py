"""The one bounded cache every per-request look-up uses.

The hooks answer the same questions for every call to the same route (is this
host ours, what is its template, does its URL need redacting), so they cache
the answers. Keys come from the network (URLs, ids, hosts), so every cache
must stay bounded whatever the traffic: a ``BoundedCache`` holds at most
``max_size`` entries and, when a new key arrives at that size, starts over
(it is emptied, then the new entry stored). Starting over costs one miss per
live key and keeps hits as cheap as a plain ``dict`` look-up, which an LRU's
bookkeeping on every hit would not.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class BoundedCache(dict[_K, _V], Generic[_K, _V]):
    """A ``dict`` of at most ``max_size`` entries: ``get`` as usual, ``put`` to store.

    Thread-safe in the way the hooks need: under the GIL a concurrent ``put``
    and ``get`` each see a consistent dict, and a lost race only costs a
    recomputation. Never store with ``cache[key] = value``: that bypasses the
    bound.

    Args:
        max_size: Entries kept before the cache starts over; at least 1.
    """

    __slots__ = ("max_size",)

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        super().__init__()
        self.max_size = max_size

    def put(self, key: _K, value: _V) -> _V:
        """Store ``value`` under ``key`` (emptying the cache first if it is full); returns it."""
        if len(self) >= self.max_size and key not in self:
            self.clear()
        self[key] = value
        return value
