"""RetryBudget: a thread-safe token bucket that keeps retries a fraction of calls."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_productapi.retry import RetryBudget


def test_a_new_budget_is_full() -> None:
    """The bucket starts with the burst allowance."""
    budget = RetryBudget(ratio=0.1, burst=10)

    assert budget.tokens == 10.0


def test_each_retry_takes_one_token_until_fewer_than_one_is_left() -> None:
    """Ten retries empty a burst of ten; the eleventh is refused and takes nothing."""
    budget = RetryBudget(ratio=0.1, burst=10)

    granted = [budget.try_withdraw() for _ in range(11)]

    assert granted == [True] * 10 + [False]
    assert budget.tokens == 0.0


def test_ten_calls_at_ratio_one_tenth_earn_exactly_one_retry() -> None:
    """Deposits are exact: ten times 0.1 is one whole token, not 0.999..."""
    budget = RetryBudget(ratio=0.1, burst=1)
    assert budget.try_withdraw()

    for _ in range(9):
        budget.deposit()
    assert not budget.try_withdraw()
    budget.deposit()

    assert budget.try_withdraw()


def test_deposits_are_capped_at_the_burst() -> None:
    """A long healthy stretch does not bank more than the burst allowance."""
    budget = RetryBudget(ratio=0.5, burst=3)

    for _ in range(100):
        budget.deposit()

    assert budget.tokens == 3.0


def test_ratio_zero_leaves_only_the_burst() -> None:
    """With ratio 0 the burst is spent once and never refilled."""
    budget = RetryBudget(ratio=0, burst=2)
    for _ in range(50):
        budget.deposit()

    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("message", "kwargs"),
    [
        ("ratio must be", {"ratio": -0.1}),
        ("ratio must be", {"ratio": float("nan")}),
        ("burst must be", {"burst": 0.5}),
        ("burst must be", {"burst": float("inf")}),
    ],
    ids=["negative-ratio", "nan-ratio", "burst-below-one", "infinite-burst"],
)
def test_invalid_settings_are_refused(message: str, kwargs: dict[str, float]) -> None:
    """A bucket that can never grant a retry, or grants unboundedly, is refused."""
    with pytest.raises(ValueError, match=message):
        RetryBudget(**kwargs)


def test_repr_shows_the_settings_and_the_tokens_left() -> None:
    """The repr helps when debugging a shared budget."""
    assert repr(RetryBudget(0.25, 4)) == "RetryBudget(ratio=0.25, burst=4.0, tokens=4.00)"


def test_concurrent_withdrawals_never_overdraw() -> None:
    """Sixteen threads racing for a burst of 100 tokens get exactly 100 retries."""
    budget = RetryBudget(ratio=0.0, burst=100)
    granted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        mine = [budget.try_withdraw() for _ in range(50)]
        with lock:
            granted.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(granted) == 100
    assert budget.tokens == 0.0


def test_concurrent_deposits_and_withdrawals_respect_the_bound() -> None:
    """Threads making calls and retries together never exceed ratio x calls + burst."""
    budget = RetryBudget(ratio=0.1, burst=5)
    retries = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal retries
        mine = 0
        for _ in range(1000):
            budget.deposit()
            # An always-failing API: every call wants four retries.
            mine += sum(budget.try_withdraw() for _ in range(4))
        with lock:
            retries += mine

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert retries <= 0.1 * 8000 + 5
    assert retries >= 0.1 * 8000  # the budget is spent, not lost


@given(
    ratio=st.floats(min_value=0, max_value=1),
    burst=st.floats(min_value=1, max_value=50),
    wanted=st.lists(st.integers(min_value=0, max_value=6), max_size=300),
)
def test_retries_never_exceed_ratio_times_calls_plus_burst(
    ratio: float, burst: float, wanted: list[int]
) -> None:
    """Whatever each call wants, granted retries <= ratio x calls + burst."""
    budget = RetryBudget(ratio=ratio, burst=burst)
    retries = 0

    for want in wanted:
        budget.deposit()
        for _ in range(want):
            if not budget.try_withdraw():
                break
            retries += 1

    assert retries <= ratio * len(wanted) + burst
    assert 0 <= budget.tokens <= burst
