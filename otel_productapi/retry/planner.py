"""The retry planner: after an attempt, the next wait or a reason to stop.

``plan_retry`` is pure: it reads the policy, the attempt's outcome, what the
server asked for and the time spent, and answers. ``Retrier`` holds what a
client's retry loop shares across calls (the policy, the budget, the retry
counters, clocks and randomness), so the ``requests`` session and the
``httpx`` transports (sync and async) run the same decisions::

    after attempt n (0 = the first):
        outcome retryable? ............ NOT_RETRYABLE
        attempts left? ................ NO_ATTEMPTS_LEFT
        body sendable again? .......... BODY_NOT_REWINDABLE
        wait = server's (429: X-RateLimit-Reset / Retry-After; 5xx: Retry-After),
               at least base_delay, else the policy's backoff
        server's wait acceptable? ..... SERVER_WAIT_TOO_LONG
        ends before the deadline? ..... PAST_DEADLINE
        (the client rewinds the body) . BODY_NOT_REWINDABLE
        budget grants a token? ........ BUDGET_EXHAUSTED (counted as a refusal)
        -> sleep(wait), attempt n + 1, RESEND_COUNT = n + 1
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import Attributes

from otel_productapi._core import names as n
from otel_productapi._core.headers import Headers, ratelimit_wait_seconds, retry_after_seconds
from otel_productapi._core.routes import RouteTemplater
from otel_productapi._core.status import Classification, normalize_method
from otel_productapi._core.urls import split_url
from otel_productapi._telemetry.metrics import RetryInstruments, create_retry_instruments
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.policy import RetryPolicy

__all__ = ["Retrier", "Stop", "plan_retry", "server_wait"]


class Stop(enum.Enum):
    """Why no retry follows an attempt; the outcome then reaches the caller."""

    NOT_RETRYABLE = "not_retryable"
    NO_ATTEMPTS_LEFT = "no_attempts_left"
    BODY_NOT_REWINDABLE = "body_not_rewindable"
    SERVER_WAIT_TOO_LONG = "server_wait_too_long"
    PAST_DEADLINE = "past_deadline"
    BUDGET_EXHAUSTED = "budget_exhausted"


def server_wait(
    status: int | None, headers: Headers | None, *, now: float, reset_unit: str
) -> float | None:
    """What the server asked the client to wait, in seconds, if anything.

    A 429 waits for ``X-RateLimit-Reset`` (else ``Retry-After``): the reading
    the hooks record as ``productapi.ratelimit.reset``, so the span shows the
    wait. Any other response waits for ``Retry-After``.
    """
    if status is None or headers is None:
        return None
    if status == 429:
        return ratelimit_wait_seconds(headers, now=now, reset_unit=reset_unit)
    return retry_after_seconds(headers, now=now)


def plan_retry(
    policy: RetryPolicy,
    *,
    attempt: int,
    outcome: Classification | None,
    server_wait: float | None,
    elapsed: float,
    rewindable: bool,
    rng: random.Random | None = None,
) -> float | Stop:
    """The wait before the next attempt, or why there is none.

    Args:
        policy: How to retry.
        attempt: The attempt that just ended, 0 for the first.
        outcome: Its classification (``None``: success).
        server_wait: What the server asked for (``server_wait``), if anything.
        elapsed: Seconds since the call started.
        rewindable: The request body can be sent again.
        rng: Randomness for the jitter.
    """
    if outcome is None or not outcome.retryable:
        return Stop.NOT_RETRYABLE
    if attempt + 1 >= policy.max_attempts:
        return Stop.NO_ATTEMPTS_LEFT
    if not rewindable:
        return Stop.BODY_NOT_REWINDABLE
    wait = policy.backoff(attempt + 1, rng)
    if server_wait is not None:
        limit = policy.max_ratelimit_wait
        if limit is not None and server_wait > limit:
            return Stop.SERVER_WAIT_TOO_LONG
        # Never sooner than base_delay: resets are rounded down to whole
        # seconds, and a retry before the window turns over is a wasted 429.
        wait = max(server_wait, policy.base_delay)
    if policy.deadline is not None and elapsed + wait > policy.deadline:
        return Stop.PAST_DEADLINE
    return wait


class Retrier:
    """What every call of one retrying client shares: policy, budget, counters, time.

    Args:
        policy: How to retry; ``RetryPolicy()`` if ``None``.
        budget: Shared between clients that call the same API; ``None``
            creates one from the policy's ``budget_ratio``/``budget_burst``.
        settings: For ``url.template`` on the counters and the unit of
            ``X-RateLimit-Reset``; ``None`` reads the environment, once.
        meter_provider: Where the retry counters go; ``None``: the global one.
        clock: Monotonic seconds, for the deadline.
        wall_clock: Seconds since the epoch, for epoch resets and dates.
        rng: Randomness for the jitter.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        budget: RetryBudget | None = None,
        settings: ProductApiSettings | None = None,
        meter_provider: MeterProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.policy: RetryPolicy = policy if policy is not None else RetryPolicy()
        self.budget: RetryBudget = (
            budget
            if budget is not None
            else RetryBudget(self.policy.budget_ratio, self.policy.budget_burst)
        )
        resolved = settings if settings is not None else load_settings()
        self._templater: RouteTemplater = resolved.route_templater()
        self._reset_unit = resolved.ratelimit_reset_unit
        self._instruments: RetryInstruments = create_retry_instruments(meter_provider)
        self.clock = clock
        self._wall_clock = wall_clock
        self._rng = rng

    def start(self) -> float:
        """A call starts: deposit into the budget; returns the start time for ``after``."""
        self.budget.deposit()
        return self.clock()

    def after(
        self,
        *,
        attempt: int,
        start: float,
        method: str,
        url: str,
        outcome: Classification | None,
        status: int | None = None,
        headers: Headers | None = None,
        rewind: Callable[[], bool] | None,
    ) -> float | None:
        """After an attempt: the seconds to wait before the next one, or ``None`` to stop.

        Rewinds the body (``rewind``, ``None`` when it cannot be sent again)
        and takes a budget token only when everything else allows a retry,
        so a refused retry spends nothing; a refusal is counted.
        """
        wait = plan_retry(
            self.policy,
            attempt=attempt,
            outcome=outcome,
            server_wait=server_wait(
                status, headers, now=self._wall_clock(), reset_unit=self._reset_unit
            ),
            elapsed=self.clock() - start,
            rewindable=rewind is not None,
            rng=self._rng,
        )
        if isinstance(wait, Stop):
            return None
        if rewind is not None and not rewind():
            return None
        assert outcome is not None  # plan_retry only plans retries of failures
        if not self.budget.try_withdraw():
            self._instruments.refusals.add(1, self._attributes(method, url, outcome))
            return None
        self._instruments.retries.add(1, self._attributes(method, url, outcome))
        return wait

    def _attributes(self, method: str, url: str, outcome: Classification) -> Attributes:
        host, path = split_url(url) or ("", "/")
        return {
            n.ATTR_HTTP_REQUEST_METHOD: normalize_method(method),
            n.ATTR_SERVER_ADDRESS: host,
            n.ATTR_URL_TEMPLATE: self._templater.template(path),
            n.ATTR_ERROR_CLASS: outcome.error_class,
        }
