"""``RetryingSession``: a ``requests.Session`` whose ``send`` retries as the status table says.

One call, as the caller sees it::

    session.get(...)  ->  Session.request  ->  RetryingSession.send
        retrier.start()                          (budget deposit)
        attempt 0: RESEND_COUNT=0 -> Session.send (instrumented: CLIENT span)
        retrier.after(...) -> wait, or stop      (see otel_productapi.retry.planner)
            stop -> return the response / raise the exception, unchanged
            wait -> close the response, sleep(wait)
        attempt 1: RESEND_COUNT=1 -> Session.send (a sibling CLIENT span) ...

Redirect hops that ``Session.send`` makes inside an attempt come back through
``send``; they pass straight through, so a chain of redirects is one attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import requests
from opentelemetry.metrics import MeterProvider

from otel_productapi._adapters.requests.private import body_position
from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi._core.status import Classification, classify_status, classify_transport_failure
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi._telemetry.settings import ProductApiSettings
from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.planner import Retrier
from otel_productapi.retry.policy import RetryPolicy

__all__ = ["RetryingSession"]

# The session whose retry loop is running in this context: a send() that
# finds itself here is a redirect hop inside an attempt, not a new call.
_LOOPING: ContextVar[RetryingSession | None] = ContextVar(
    "otel_productapi_retry_loop", default=None
)

Rewind = Callable[[], bool]


class RetryingSession(requests.Session):
    """A ``requests.Session`` that retries Product API calls, one span per attempt.

    Retries exactly what the status table calls retryable: 429, any 5xx,
    connect failures, and read timeouts or resets of idempotent methods
    (GET, HEAD, OPTIONS, PUT, DELETE). Every other outcome, and the last
    one, reaches the caller unchanged: the same ``Response`` object, body
    unread if it was streamed, or the same exception.

    A 429 waits for ``X-RateLimit-Reset`` (delta, epoch or epoch
    milliseconds, as the settings say), or ``Retry-After`` when there is no
    reset, instead of the backoff; a 5xx with ``Retry-After`` waits for it.
    When that wait is longer than ``policy.max_ratelimit_wait``, or any wait
    would end past ``policy.deadline``, the outcome is returned at once.
    Each retry spends a token of the session's ``RetryBudget``; when none is
    left the outcome is returned at once and the refusal is counted.

    Bodies that cannot be sent twice (generators, file objects that cannot
    seek back) are never retried.

    Example::

        session = RetryingSession(policy=RetryPolicy(max_attempts=3, max_delay=10))
        response = session.get(url, timeout=5)
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        budget: RetryBudget | None = None,
        settings: ProductApiSettings | None = None,
        meter_provider: MeterProvider | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """Build a session.

        Args:
            policy: How to retry; ``RetryPolicy()`` (the API's advice) if ``None``.
            budget: Share one between clients that call the same API;
                ``None`` creates one for this session from the policy's
                ``budget_ratio`` and ``budget_burst`` (ignored when given).
            settings: For the ``url.template`` of metric attributes and the
                unit of ``X-RateLimit-Reset``; ``None`` reads the
                ``PRODUCTAPI_OTEL_*`` environment once, now.
            meter_provider: Where the retry counters go; ``None`` means the
                global one.
            sleep: Waits between attempts; tests pass a recorder.
            clock: Monotonic seconds, for the deadline.
            wall_clock: Seconds since the epoch, for epoch resets and
                ``Retry-After`` dates.
            rng: Randomness for the jitter; a seeded ``random.Random`` makes
                delays reproducible.
        """
        super().__init__()
        self._retrier = Retrier(
            policy,
            budget=budget,
            settings=settings,
            meter_provider=meter_provider,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
        )
        self._sleep = sleep

    @property
    def policy(self) -> RetryPolicy:
        """How this session retries."""
        return self._retrier.policy

    @property
    def budget(self) -> RetryBudget:
        """The retry budget this session spends."""
        return self._retrier.budget

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send ``request``, retrying as the policy and the status table say.

        Args:
            request: The prepared request; its body is rewound before a retry.
            **kwargs: As for ``requests.Session.send`` (``timeout``,
                ``stream``...), passed to every attempt unchanged.

        Returns:
            The final response, unchanged: a success, a non-retryable error,
            or the last retryable one when retrying stopped.

        Raises:
            requests.RequestException: The final attempt's exception, unchanged.
        """
        if _LOOPING.get() is self:
            return super().send(request, **kwargs)
        token = _LOOPING.set(self)
        try:
            return self._send_with_retries(request, kwargs)
        finally:
            _LOOPING.reset(token)

    def _send_with_retries(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        retrier = self._retrier
        start = retrier.start()
        rewind = _rewinder(request)
        method, url = request.method or "GET", request.url or ""
        attempt = 0
        outcome: Classification | None
        while True:
            resend = RESEND_COUNT.set(attempt)
            try:
                response = super().send(request, **kwargs)
            except Exception as exc:
                outcome = classify_transport_failure(transport_failure_of(exc), method)
                wait = retrier.after(
                    attempt=attempt, start=start, method=method, url=url, outcome=outcome,
                    rewind=rewind,
                )  # fmt: skip
                if wait is None:
                    raise
            else:
                wait = retrier.after(
                    attempt=attempt,
                    start=start,
                    method=method,
                    url=url,
                    outcome=classify_status(response.status_code),
                    status=response.status_code,
                    headers=response.headers,
                    rewind=rewind,
                )
                if wait is None:
                    return response
                # Release the connection before sending again; this response
                # is never returned, so nobody else will.
                response.close()
            finally:
                RESEND_COUNT.reset(resend)
            self._sleep(wait)
            attempt += 1


def _rewinder(request: requests.PreparedRequest) -> Rewind | None:
    """How to make the body sendable again, or ``None`` if it cannot be.

    ``bytes``/``str`` bodies (and no body) are sent as they are each time. A
    file object is sought back to where ``requests`` found it. A generator
    or other iterator is consumed by the first attempt and cannot be resent.
    """
    body = request.body
    if body is None or isinstance(body, bytes | str):
        return _nothing_to_rewind
    position = body_position(request)
    seek = getattr(body, "seek", None)
    if not hasattr(body, "read") or position is None or not callable(seek):
        return None

    def rewind() -> bool:
        try:
            seek(position)
        except (OSError, ValueError):
            return False
        return True

    return rewind


def _nothing_to_rewind() -> bool:
    return True
