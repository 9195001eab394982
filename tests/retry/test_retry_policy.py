"""RetryPolicy: a validated value with a documented backoff formula."""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

import pytest

from otel_productapi.retry import RetryPolicy


def test_defaults_follow_the_error_page() -> None:
    """Defaults: 5 attempts, 1 s doubling to 60 s, equal jitter, 2-minute deadline, 10% budget."""
    policy = RetryPolicy()

    assert (
        policy.max_attempts,
        policy.base_delay,
        policy.multiplier,
        policy.max_delay,
    ) == (5, 1.0, 2.0, 60.0)
    assert policy.jitter == "equal"
    assert policy.deadline == 120.0
    assert policy.max_ratelimit_wait == 60.0
    assert (policy.budget_ratio, policy.budget_burst) == (0.1, 10.0)


def test_backoff_caps_double_from_base_delay_up_to_max_delay() -> None:
    """Caps are base_delay * multiplier ** (n - 1), never above max_delay."""
    policy = RetryPolicy(jitter="none")

    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_cap_does_not_overflow_on_huge_retry_numbers() -> None:
    """A retry number far past the cap still returns max_delay instead of overflowing."""
    assert RetryPolicy().backoff_cap(100_000) == 60.0


@pytest.mark.parametrize(
    ("expected", "changes"),
    [
        ([0.5, 1.5, 4.5, 5.0], {"base_delay": 0.5, "multiplier": 3.0, "max_delay": 5.0}),
        ([2.0, 2.0, 2.0, 2.0], {"base_delay": 2.0, "multiplier": 1.0}),
        ([0.0, 0.0, 0.0, 0.0], {"base_delay": 0.0, "max_delay": 0.0}),
    ],
    ids=["triple-capped-at-5", "constant", "zero"],
)
def test_backoff_caps_follow_the_settings(expected: list[float], changes: dict[str, Any]) -> None:
    """Other bases and multipliers produce the formula's caps."""
    policy = dataclasses.replace(RetryPolicy(jitter="none"), **changes)

    assert expected == [policy.backoff(n) for n in range(1, 5)]


def test_equal_jitter_keeps_at_least_half_of_each_cap() -> None:
    """Equal jitter draws from [cap/2, cap], so delays never collapse to zero."""
    policy = RetryPolicy(jitter="equal")
    rng = random.Random(1234)

    for n in range(1, 10):
        cap = policy.backoff_cap(n)
        delays = [policy.backoff(n, rng) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert min(delays) < cap * 0.6
        assert max(delays) > cap * 0.9


def test_full_jitter_spreads_over_the_whole_cap() -> None:
    """Full jitter draws from [0, cap]."""
    policy = RetryPolicy(jitter="full")
    rng = random.Random(99)

    delays = [policy.backoff(3, rng) for _ in range(500)]

    assert all(0 <= d <= 4.0 for d in delays)
    assert min(delays) < 0.4
    assert max(delays) > 3.6


def test_a_seeded_rng_makes_jitter_reproducible() -> None:
    """The same seed gives the same delays."""
    policy = RetryPolicy()

    first = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]
    second = [policy.backoff(n, random.Random(7)) for n in range(1, 6)]

    assert first == second


def test_retry_numbers_count_from_one() -> None:
    """Retry 0 is the first attempt, which has no backoff."""
    with pytest.raises(ValueError, match="retry counts from 1"):
        RetryPolicy().backoff(0)


@pytest.mark.parametrize(
    ("message", "changes"),
    [
        ("max_attempts must be at least 1, got 0", {"max_attempts": 0}),
        ("base_delay must be at least 0, got -1", {"base_delay": -1}),
        ("multiplier must be at least 1, got 0.5", {"multiplier": 0.5}),
        (
            "max_delay must be at least base_delay (2.0), got 1.0",
            {"base_delay": 2.0, "max_delay": 1.0},
        ),
        ("jitter must be one of", {"jitter": "random"}),
        ("deadline must be greater than 0 (or None), got 0", {"deadline": 0}),
        ("max_ratelimit_wait must be at least 0 (or None), got -5", {"max_ratelimit_wait": -5}),
        ("budget_ratio must be at least 0, got -0.1", {"budget_ratio": -0.1}),
        ("budget_burst must be at least 1, got 0.5", {"budget_burst": 0.5}),
        ("max_delay must be a finite number, got inf", {"max_delay": float("inf")}),
        ("base_delay must be a finite number, got nan", {"base_delay": float("nan")}),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_invalid_settings_fail_with_the_setting_named(
    message: str, changes: dict[str, object]
) -> None:
    """Each rule names the setting, the rule and the value."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        RetryPolicy(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [{"max_attempts": 2.5}, {"max_attempts": True}, {"base_delay": "1"}],
    ids=["float-attempts", "bool-attempts", "string-delay"],
)
def test_wrongly_typed_settings_fail(changes: dict[str, object]) -> None:
    """Types are checked too: a string or a bool is not a number of seconds or attempts."""
    with pytest.raises(TypeError, match="must be"):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_none_disables_the_deadline_and_the_ratelimit_limit() -> None:
    """None is accepted where the docstring says it means 'no limit'."""
    policy = RetryPolicy(deadline=None, max_ratelimit_wait=None)

    assert (policy.deadline, policy.max_ratelimit_wait) == (None, None)


def test_replace_derives_a_validated_variant() -> None:
    """dataclasses.replace changes one setting, keeps the rest and re-validates."""
    policy = RetryPolicy()

    fewer = dataclasses.replace(policy, max_attempts=2)

    assert fewer.max_attempts == 2
    assert fewer.base_delay == policy.base_delay
    assert policy.max_attempts == 5
    with pytest.raises(ValueError, match="max_attempts"):
        dataclasses.replace(policy, max_attempts=0)


def test_policies_are_frozen_hashable_values() -> None:
    """Equal settings are equal policies; assignment is refused."""
    assert RetryPolicy(max_attempts=3) == RetryPolicy(max_attempts=3)
    assert len({RetryPolicy(), RetryPolicy()}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_attempts = 3  # type: ignore[misc]
