"""The retry policy: a frozen value that says how often and how long to retry.

Pure: nothing here sends a request or reads a clock. ``RetryingSession``
reads the policy; tests read it directly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Jitter", "RetryPolicy"]

#: How a backoff delay is randomised (see ``RetryPolicy``).
Jitter = Literal["equal", "full", "none"]

_JITTERS: Final = ("equal", "full", "none")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a ``RetryingSession`` retries a Product API call.

    A value: compare it, hash it, derive variants with
    ``dataclasses.replace(policy, max_attempts=3)``. Every setting is
    validated when the policy is built, so a bad one fails at start-up, not
    on the first outage. Which outcomes are retried is not a setting: it
    comes from the status table (429, 5xx, and transport failures the table
    calls retryable).

    Backoff before retry *n* (1 for the first retry, 2 for the second...)::

        cap(n)   = min(max_delay, base_delay * multiplier ** (n - 1))
        "equal": delay = cap(n) / 2 + uniform(0, cap(n) / 2)
        "full":  delay = uniform(0, cap(n))
        "none":  delay = cap(n)

    With the defaults the caps are 1, 2, 4, 8 s (then 16, 32, 60, 60...).
    A 429 that carries ``X-RateLimit-Reset`` (or, failing that,
    ``Retry-After``), or a 5xx that carries ``Retry-After``, waits for what the
    server said instead, never less than ``base_delay``: the server knows
    when its window resets (resets are rounded down to whole seconds), and
    retrying earlier only spends another request and another budget token.

    Attributes:
        max_attempts: Attempts in total, the first included (default 5).
            1 never retries. Must be at least 1.
        base_delay: Seconds of the first backoff cap (default 1.0, as the
            API's error page advises). 0 retries at once.
        multiplier: Growth of the cap per retry (default 2.0, doubling).
            1.0 keeps a constant delay. Must be at least 1.
        max_delay: Upper bound of any backoff cap, in seconds (default 60.0,
            "about a minute"). Must be at least ``base_delay``.
        jitter: ``"equal"`` (default) keeps at least half of each cap, so the
            delays still grow as the API asks and never collapse to zero,
            while spreading clients that failed together over the other
            half. ``"full"`` spreads over the whole cap (fewer collisions,
            but a retry can follow almost at once). ``"none"`` is
            deterministic, for tests and single clients.
        deadline: Seconds from the start of the call after which no new
            attempt starts (default 120.0). ``None`` sets no deadline. A
            wait that would end past the deadline is not slept: the current
            outcome is returned at once. It does not cut an attempt short;
            pass ``timeout=`` to ``requests`` for that.
        max_ratelimit_wait: Longest wait, in seconds, honoured when the
            server names one: a 429's ``X-RateLimit-Reset`` or
            ``Retry-After``, a 5xx's ``Retry-After`` (default 60.0). An
            outcome asking for a longer wait is returned at once rather than
            sleeping for an hour. ``None`` means no limit other than
            ``deadline``; 0 returns every such outcome at once.
        budget_ratio: Tokens each call (first attempt) adds to the retry
            budget (default 0.1: retries may add about 10% to the request
            volume). 0 leaves only the burst allowance, never refilled.
        budget_burst: Capacity of the retry budget, and its initial content,
            in retries (default 10.0). Must be at least 1, since a retry
            costs one token.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: Jitter = "equal"
    deadline: float | None = 120.0
    max_ratelimit_wait: float | None = 60.0
    budget_ratio: float = 0.1
    budget_burst: float = 10.0

    def __post_init__(self) -> None:
        """Reject settings that cannot mean anything.

        Raises:
            ValueError: Naming the setting, the rule and the value given.
            TypeError: When ``max_attempts`` is not an integer.
        """
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            msg = f"max_attempts must be an int, got {self.max_attempts!r}"
            raise TypeError(msg)
        _require(self.max_attempts >= 1, "max_attempts", "at least 1", self.max_attempts)
        _require_finite("base_delay", self.base_delay)
        _require(self.base_delay >= 0, "base_delay", "at least 0", self.base_delay)
        _require_finite("multiplier", self.multiplier)
        _require(self.multiplier >= 1, "multiplier", "at least 1", self.multiplier)
        _require_finite("max_delay", self.max_delay)
        _require(
            self.max_delay >= self.base_delay,
            "max_delay",
            f"at least base_delay ({self.base_delay})",
            self.max_delay,
        )
        _require(self.jitter in _JITTERS, "jitter", f"one of {_JITTERS}", self.jitter)
        if self.deadline is not None:
            _require_finite("deadline", self.deadline)
            _require(self.deadline > 0, "deadline", "greater than 0 (or None)", self.deadline)
        if self.max_ratelimit_wait is not None:
            _require_finite("max_ratelimit_wait", self.max_ratelimit_wait)
            _require(
                self.max_ratelimit_wait >= 0,
                "max_ratelimit_wait",
                "at least 0 (or None)",
                self.max_ratelimit_wait,
            )
        _require_finite("budget_ratio", self.budget_ratio)
        _require(self.budget_ratio >= 0, "budget_ratio", "at least 0", self.budget_ratio)
        _require_finite("budget_burst", self.budget_burst)
        _require(self.budget_burst >= 1, "budget_burst", "at least 1", self.budget_burst)

    def backoff_cap(self, retry: int) -> float:
        """The un-jittered backoff before a retry.

        Args:
            retry: 1 for the first retry (the second attempt), 2 for the next...

        Returns:
            ``min(max_delay, base_delay * multiplier ** (retry - 1))`` seconds.
        """
        if retry < 1:
            msg = f"retry counts from 1, got {retry}"
            raise ValueError(msg)
        if self.base_delay == 0:
            return 0.0
        # Compare exponents instead of computing a power that can overflow.
        if self.multiplier > 1 and (retry - 1) * math.log(self.multiplier) >= math.log(
            self.max_delay / self.base_delay
        ):
            return self.max_delay
        return min(self.max_delay, self.base_delay * self.multiplier ** (retry - 1))

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The delay before a retry, jittered as the policy says.

        Args:
            retry: 1 for the first retry (the second attempt), 2 for the next...
            rng: Source of randomness; a seeded ``random.Random`` makes the
                result reproducible. Defaults to the ``random`` module's.

        Returns:
            Seconds to wait, between 0 and ``max_delay``.
        """
        cap = self.backoff_cap(retry)
        uniform = (rng or _RNG).uniform
        if self.jitter == "equal":
            half = cap / 2
            return half + uniform(0, half)
        if self.jitter == "full":
            return uniform(0, cap)
        return cap


# Backoff jitter is not security-sensitive; it only spreads clients apart.
_RNG: Final = random.Random()  # noqa: S311


def _require(ok: bool, name: str, rule: str, value: object) -> None:
    if not ok:
        msg = f"{name} must be {rule}, got {value!r}"
        raise ValueError(msg)


def _require_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a number, got {value!r}"
        raise TypeError(msg)
    _require(math.isfinite(value), name, "a finite number", value)
