"""The bounded cache: a dict that starts over when full."""

from __future__ import annotations

import pytest

from otel_productapi._core.cache import BoundedCache


def test_a_full_cache_starts_over_with_the_new_entry() -> None:
    """The entry that does not fit empties the cache, then is stored alone."""
    cache: BoundedCache[str, int] = BoundedCache(3)
    for i, key in enumerate("abc"):
        cache.put(key, i)
    assert dict(cache) == {"a": 0, "b": 1, "c": 2}
    assert cache.put("d", 3) == 3
    assert dict(cache) == {"d": 3}


def test_updating_a_key_of_a_full_cache_keeps_the_others() -> None:
    """Only a new key can overflow the cache."""
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    assert dict(cache) == {"a": 10, "b": 2}


def test_never_holds_more_than_max_size_whatever_the_keys() -> None:
    """10,000 distinct keys through a cache of 64 leave at most 64."""
    cache: BoundedCache[int, int] = BoundedCache(64)
    for i in range(10_000):
        cache.put(i, i)
        assert len(cache) <= 64
    assert cache.get(9_999) == 9_999


def test_max_size_must_be_positive() -> None:
    """A cache that can hold nothing is a configuration error."""
    with pytest.raises(ValueError, match="max_size must be at least 1, got 0"):
        BoundedCache(0)
