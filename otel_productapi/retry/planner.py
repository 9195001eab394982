"""The retry planner: after an attempt, the next wait or a reason to stop.

``plan_retry`` is pure: it reads the policy, the attempt's outcome, what the
server asked for and the time spent, and answers. ``Retrier`` holds what a
client's retry loop shares across calls (the policy, the budget, the retry
counters, clocks and randomness), and ``Attempts``/``AsyncAttempts`` run one
call's loop, so the ``requests`` session and the ``httpx`` transports (sync
and async) make the same decisions the same way::

    attempts = Attempts[Response](retrier, method, url, rewind=..., failure_of=..., sleep=...)
    for attempt in attempts:               # closes a dropped response, sleeps the wait
        with attempt:                      # RESEND_COUNT; a retryable exception is kept
            attempt.answered(send(request))
    return attempts.response               # or the last exception, raised by the loop

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
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import Attributes

from otel_productapi._core import names as n
from otel_productapi._core.headers import Headers, ratelimit_wait_seconds, retry_after_seconds
from otel_productapi._core.routes import RouteTemplater
from otel_productapi._core.status import (
    Classification,
    TransportFailure,
    classify_status,
    classify_transport_failure,
    normalize_method,
)
from otel_productapi._core.urls import split_url
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi._telemetry.metrics import RetryInstruments, create_retry_instruments
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.policy import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "REWIND_NOT_NEEDED",
    "AsyncAttempts",
    "Attempt",
    "Attempts",
    "Retrier",
    "RetryOptions",
    "RetryingClient",
    "Stop",
    "plan_retry",
    "server_wait",
]


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


class RetryOptions(TypedDict, total=False):
    """What every retrying client takes besides its policy (and builds a ``Retrier`` from).

    Attributes:
        budget: Share one between clients that call the same API; ``None``
            creates one per client from the policy's ``budget_ratio`` and
            ``budget_burst`` (ignored when a budget is given).
        settings: For the ``url.template`` of the retry counters and the unit
            of ``X-RateLimit-Reset``; ``None`` reads the ``PRODUCTAPI_OTEL_*``
            environment once, when the client is built.
        meter_provider: Where the retry counters go; ``None`` means the global one.
        clock: Monotonic seconds, for the deadline.
        wall_clock: Seconds since the epoch, for epoch resets and
            ``Retry-After`` dates.
        rng: Randomness for the jitter; a seeded ``random.Random`` makes
            delays reproducible.
    """

    budget: RetryBudget | None
    settings: ProductApiSettings | None
    meter_provider: MeterProvider | None
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    rng: random.Random | None


class Retrier:
    """What every call of one retrying client shares: policy, budget, counters, time.

    Args:
        policy: How to retry; ``RetryPolicy()`` if ``None``.
        **options: See ``RetryOptions``.
    """

    def __init__(self, policy: RetryPolicy | None = None, **options: Unpack[RetryOptions]) -> None:
        self.policy: RetryPolicy = policy if policy is not None else RetryPolicy()
        budget = options.get("budget")
        self.budget: RetryBudget = (
            budget
            if budget is not None
            else RetryBudget(self.policy.budget_ratio, self.policy.budget_burst)
        )
        settings = options.get("settings")
        resolved = settings if settings is not None else load_settings()
        self._templater: RouteTemplater = resolved.route_templater()
        self._reset_unit = resolved.ratelimit_reset_unit
        self._instruments: RetryInstruments = create_retry_instruments(
            options.get("meter_provider")
        )
        self.clock: Callable[[], float] = options.get("clock", time.monotonic)
        self._wall_clock: Callable[[], float] = options.get("wall_clock", time.time)
        self._rng = options.get("rng")

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


#: Makes a request body sendable again; ``False`` when it could not.
Rewind = Callable[[], bool]


def _rewind_not_needed() -> bool:
    return True


#: The ``rewind`` of a body that is sent as it is each time (bytes, or none).
REWIND_NOT_NEEDED: Rewind = _rewind_not_needed


class _Answer(Protocol):
    """What the loop reads of a response: requests' and httpx's alike."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Headers: ...


class SyncAnswer(_Answer, Protocol):
    """A response the sync loop closes when it drops it."""

    def close(self) -> None: ...


class AsyncAnswer(_Answer, Protocol):
    """A response the async loop closes when it drops it."""

    async def aclose(self) -> None: ...


R = TypeVar("R", bound=_Answer)
S = TypeVar("S")


class Attempt(Generic[R]):
    """One attempt: ``with attempt:`` around sending it, ``answered`` with the response.

    Entering sets ``RESEND_COUNT`` (the hooks put it on the attempt's span);
    leaving resets it. An exception that the table says to retry (and the
    policy and budget allow) is kept and the loop goes on; any other leaves
    the ``with``, and the loop, unchanged.
    """

    __slots__ = ("_loop", "_token", "number")

    def __init__(self, loop: _Loop[R, Any], number: int) -> None:
        self._loop = loop
        self.number = number

    def __enter__(self) -> Attempt[R]:
        self._token = RESEND_COUNT.set(self.number)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        RESEND_COUNT.reset(self._token)
        # BaseException (KeyboardInterrupt, cancellation) is never retried.
        return isinstance(exc, Exception) and self._loop.failed(exc)

    def answered(self, response: R) -> None:
        """The attempt got ``response``: the call's answer, or one to drop and retry."""
        self._loop.answered(response)


class _Loop(Generic[R, S]):
    """One call's state between attempts; ``Attempts`` and ``AsyncAttempts`` drive it.

    Args:
        retrier: The client's.
        method: The request's method.
        url: The request's URL (for the retry counters' labels).
        rewind: Makes the body sendable again; ``None`` when it cannot be.
        failure_of: The adapter's exception mapping (how far a failure got).
        sleep: Waits between attempts.
    """

    def __init__(
        self,
        retrier: Retrier,
        method: str,
        url: str,
        *,
        rewind: Rewind | None,
        failure_of: Callable[[BaseException], TransportFailure],
        sleep: S,
    ) -> None:
        self._retrier = retrier
        self._sleep = sleep
        self._start = retrier.start()
        self._method = method
        self._url = url
        self._rewind = rewind
        self._failure_of = failure_of
        self._number = -1
        #: The wait planned before the next attempt; ``None`` when there is none.
        self.wait: float | None = None
        #: A response that was not kept, to close before the next attempt.
        self.dropped: R | None = None
        self._final: R | None = None

    @property
    def response(self) -> R:
        """The call's final response, once the loop has ended without an exception."""
        if self._final is None:
            raise RuntimeError("the attempt loop ended without a response")
        return self._final

    def next_attempt(self) -> Attempt[R] | None:
        """The next attempt, or ``None`` once the call has its answer."""
        if self._number >= 0 and self.wait is None:
            return None
        self.wait, self.dropped = None, None
        self._number += 1
        return Attempt(self, self._number)

    def answered(self, response: R) -> None:
        status = response.status_code
        self.wait = self._retrier.after(
            attempt=self._number,
            start=self._start,
            method=self._method,
            url=self._url,
            outcome=classify_status(status),
            status=status,
            headers=response.headers,
            rewind=self._rewind,
        )
        if self.wait is None:
            self._final = response
        else:
            self.dropped = response

    def failed(self, exc: Exception) -> bool:
        outcome = classify_transport_failure(self._failure_of(exc), self._method)
        self.wait = self._retrier.after(
            attempt=self._number,
            start=self._start,
            method=self._method,
            url=self._url,
            outcome=outcome,
            rewind=self._rewind,
        )
        return self.wait is not None


SyncSleep = Callable[[float], object]
AsyncSleep = Callable[[float], Awaitable[object]]
SR = TypeVar("SR", bound=SyncAnswer)
AR = TypeVar("AR", bound=AsyncAnswer)


class Attempts(_Loop[SR, SyncSleep]):
    """A call's attempts for a ``for`` loop: closes a dropped response, then sleeps."""

    def __iter__(self) -> Attempts[SR]:
        return self

    def __next__(self) -> Attempt[SR]:
        dropped, wait = self.dropped, self.wait
        attempt = self.next_attempt()
        if attempt is None:
            raise StopIteration
        if dropped is not None:
            dropped.close()
        if wait is not None:
            self._sleep(wait)
        return attempt


class AsyncAttempts(_Loop[AR, AsyncSleep]):
    """A call's attempts for an ``async for`` loop: the same, awaiting close and sleep."""

    def __aiter__(self) -> AsyncAttempts[AR]:
        return self

    async def __anext__(self) -> Attempt[AR]:
        dropped, wait = self.dropped, self.wait
        attempt = self.next_attempt()
        if attempt is None:
            raise StopAsyncIteration
        if dropped is not None:
            await dropped.aclose()
        if wait is not None:
            await self._sleep(wait)
        return attempt


class RetryingClient:
    """The ``policy`` and ``budget`` of a retrying client (its ``Retrier``)."""

    _retrier: Retrier

    @property
    def policy(self) -> RetryPolicy:
        """How this client retries."""
        return self._retrier.policy

    @property
    def budget(self) -> RetryBudget:
        """The retry budget this client spends."""
        return self._retrier.budget
