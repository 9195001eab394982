"""Numbers from the network, made safe for every exporter.

OTLP encodes integers as int64 and floats as doubles; Prometheus' text format
has no place for a bool counted as 1. A value outside what the exporter can
encode does not just lose itself: the OTLP exporter fails the whole batch, and
a cumulative counter keeps the bad total forever, so every later export fails
too. Every count and gauge from a header or a body goes through here first.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_BATCH_ITEMS", "MAX_INT64", "count"]

#: The largest integer OTLP (int64) can carry.
MAX_INT64: Final = 2**63 - 1
#: The largest batch we believe: far beyond any real batched write, and small
#: enough that a counter adding it on every call cannot reach ``MAX_INT64``
#: in billions of calls (the counters also saturate there).
MAX_BATCH_ITEMS: Final = 2**31 - 1


def count(value: object, maximum: int = MAX_INT64) -> int | None:
    """``value`` if it is an ``int`` (not a ``bool``) in ``0 .. maximum``, else ``None``."""
    if type(value) is int and 0 <= value <= maximum:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum:
        return int(value)  # an int subclass (IntEnum...): record the plain number
    return None
