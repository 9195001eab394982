"""A per-client retry budget: a token bucket that keeps retries a fraction of traffic.

After the SRE book's per-client retry budget and gRPC's retry throttling:
when the API is healthy every call tops the bucket up a little, so the
occasional retry is always allowed; when it is failing, retries drain the
bucket faster than calls refill it, and further retries are refused until
calls alone bring it back. Over any stretch of time::

    retries <= ratio * calls + burst

so a storm of failures costs the API at most ``ratio`` more requests, plus
a one-off burst, instead of ``max_attempts`` times the traffic.
"""

from __future__ import annotations

import math
import threading

__all__ = ["RetryBudget"]

# Tokens are counted in millionths, as integers (gRPC counts in thousandths):
# ten deposits of 0.1 make exactly one token, with no float drift.
_UNIT = 1_000_000


class RetryBudget:
    """A thread-safe token bucket for retries; one per session, shareable.

    The bucket starts full (``burst`` tokens). ``deposit`` adds ``ratio``
    tokens per call, capped at ``burst``; ``try_withdraw`` takes one token
    per retry and refuses (returns ``False``) when less than one is left.
    Share one budget between sessions that talk to the same API so that
    together they respect one limit.
    """

    __slots__ = ("_burst", "_lock", "_ratio", "_tokens")

    def __init__(self, ratio: float = 0.1, burst: float = 10.0) -> None:
        """Build a full bucket.

        Args:
            ratio: Tokens added per call; 0.1 lets retries add about 10% to
                the request volume. 0 leaves only the burst, never refilled.
            burst: Capacity and initial content, in retries; at least 1.

        Raises:
            ValueError: When ``ratio`` is negative or ``burst`` below 1, or
                either is not finite.
        """
        if not math.isfinite(ratio) or ratio < 0:
            msg = f"ratio must be a finite number at least 0, got {ratio!r}"
            raise ValueError(msg)
        if not math.isfinite(burst) or burst < 1:
            msg = f"burst must be a finite number at least 1, got {burst!r}"
            raise ValueError(msg)
        self._ratio = math.floor(ratio * _UNIT)  # floor: never more than asked
        self._burst = math.floor(burst * _UNIT)
        self._tokens = self._burst
        self._lock = threading.Lock()

    @property
    def ratio(self) -> float:
        """Tokens each call adds."""
        return self._ratio / _UNIT

    @property
    def burst(self) -> float:
        """Capacity of the bucket."""
        return self._burst / _UNIT

    @property
    def tokens(self) -> float:
        """Tokens left now (a snapshot; other threads may change it at once)."""
        with self._lock:
            return self._tokens / _UNIT

    def deposit(self) -> None:
        """Record a call (a first attempt): add ``ratio`` tokens, up to ``burst``."""
        with self._lock:
            self._tokens = min(self._burst, self._tokens + self._ratio)

    def try_withdraw(self) -> bool:
        """Take one token for a retry.

        Returns:
            True when the retry may go ahead; False when less than one token
            is left, in which case nothing is taken.
        """
        with self._lock:
            if self._tokens < _UNIT:
                return False
            self._tokens -= _UNIT
            return True

    def __repr__(self) -> str:
        return f"RetryBudget(ratio={self.ratio!r}, burst={self.burst!r}, tokens={self.tokens:.2f})"
