"""``RetryingSession``: a ``requests.Session`` whose ``send`` retries as the status table says.

One call, as the caller sees it::

    session.get(...)  ->  Session.request  ->  RetryingSession.send
        budget.deposit()
        attempt 0: RESEND_COUNT=0 -> Session.send (instrumented: CLIENT span)
        outcome retryable? attempts left? body rewindable?
        wait = X-RateLimit-Reset / Retry-After (429) | Retry-After (5xx) | backoff
        wait within max_ratelimit_wait and the deadline? budget token?
            no  -> return the response / raise the exception, unchanged
            yes -> close the response, count the retry, sleep(wait)
        attempt 1: RESEND_COUNT=1 -> Session.send (a sibling CLIENT span) ...

Redirect hops that ``Session.send`` makes inside an attempt come back through
``send``; they pass straight through, so a chain of redirects is one attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import Attributes

from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi._core import names as n
from otel_productapi._core.headers import ratelimit_wait_seconds, retry_after_seconds
from otel_productapi._core.status import (
    Classification,
    classify_status,
    classify_transport_failure,
)
from otel_productapi._telemetry.context import RESEND_COUNT
from otel_productapi._telemetry.metrics import RetryInstruments, create_retry_instruments
from otel_productapi._telemetry.settings import ProductApiSettings, load_settings
from otel_productapi.retry.budget import RetryBudget
from otel_productapi.retry.policy import RetryPolicy

__all__ = ["RetryingSession"]

# Methods kept as they are in metric attributes; any other becomes "_OTHER"
# (semantic conventions), so made-up methods cannot blow up cardinality.
_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)

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
            budget: Share one between sessions that call the same API;
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
        self.policy: RetryPolicy = policy if policy is not None else RetryPolicy()
        self.budget: RetryBudget = (
            budget
            if budget is not None
            else RetryBudget(self.policy.budget_ratio, self.policy.budget_burst)
        )
        resolved = settings if settings is not None else load_settings()
        self._templater = resolved.route_templater()
        self._reset_unit = resolved.ratelimit_reset_unit
        self._instruments: RetryInstruments = create_retry_instruments(meter_provider)
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng

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
        start = self._clock()
        self.budget.deposit()
        rewind = _rewinder(request)
        method = (request.method or "GET").upper()
        attempt = 0
        outcome: Classification | None
        while True:
            resend = RESEND_COUNT.set(attempt)
            try:
                response = super().send(request, **kwargs)
            except Exception as exc:
                outcome = classify_transport_failure(transport_failure_of(exc), method)
                wait = self._wait_before_retry(
                    request,
                    attempt=attempt,
                    outcome=outcome,
                    response=None,
                    rewind=rewind,
                    start=start,
                )
                if wait is None:
                    raise
            else:
                outcome = classify_status(response.status_code)
                wait = self._wait_before_retry(
                    request,
                    attempt=attempt,
                    outcome=outcome,
                    response=response,
                    rewind=rewind,
                    start=start,
                )
                if wait is None:
                    return response
                # Release the connection before sending again; this response
                # is never returned, so nobody else will.
                response.close()
            finally:
                RESEND_COUNT.reset(resend)
            assert outcome is not None  # a retry is only planned for failures
            self._instruments.retries.add(1, self._attributes(request, outcome))
            self._sleep(wait)
            attempt += 1

    def _wait_before_retry(
        self,
        request: requests.PreparedRequest,
        *,
        attempt: int,
        outcome: Classification | None,
        response: requests.Response | None,
        rewind: Rewind | None,
        start: float,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop now.

        Checks, in order: the outcome is retryable, attempts are left, the body
        can be sent again, the server's wait is acceptable, the wait ends
        before the deadline, the body seeks back, and (last, so no token is
        spent on a retry that would not happen) the budget grants a token.
        """
        policy = self.policy
        if (
            outcome is None
            or not outcome.retryable
            or attempt + 1 >= policy.max_attempts
            or rewind is None
        ):
            return None
        wait = policy.backoff(attempt + 1, self._rng)
        server_wait = self._server_wait(response)
        if server_wait is not None:
            limit = policy.max_ratelimit_wait
            if limit is not None and server_wait > limit:
                return None
            # Never sooner than base_delay: resets are rounded down to whole
            # seconds, and a retry before the window turns over is a wasted 429.
            wait = max(server_wait, policy.base_delay)
        if policy.deadline is not None and self._clock() - start + wait > policy.deadline:
            return None
        if not rewind():
            return None
        if not self.budget.try_withdraw():
            self._instruments.refusals.add(1, self._attributes(request, outcome))
            return None
        return wait

    def _server_wait(self, response: requests.Response | None) -> float | None:
        """What the server asked us to wait, in seconds, if anything."""
        if response is None:
            return None
        now = self._wall_clock()
        if response.status_code == 429:
            # X-RateLimit-Reset first, then Retry-After: the reading the hooks
            # record as productapi.ratelimit.reset, so the span shows the wait.
            return ratelimit_wait_seconds(response.headers, now=now, reset_unit=self._reset_unit)
        return retry_after_seconds(response.headers, now=now)

    def _attributes(
        self, request: requests.PreparedRequest, classification: Classification
    ) -> Attributes:
        parts = urlsplit(request.url or "")
        upper = (request.method or "").upper()
        attrs: Mapping[str, str] = {
            n.ATTR_HTTP_REQUEST_METHOD: upper if upper in _KNOWN_METHODS else "_OTHER",
            n.ATTR_SERVER_ADDRESS: parts.hostname or "",
            n.ATTR_URL_TEMPLATE: self._templater.template(parts.path or "/"),
            n.ATTR_ERROR_CLASS: classification.error_class,
        }
        return attrs


def _rewinder(request: requests.PreparedRequest) -> Rewind | None:
    """How to make the body sendable again, or ``None`` if it cannot be.

    ``bytes``/``str`` bodies (and no body) are sent as they are each time. A
    file object is sought back to where ``requests`` found it. A generator
    or other iterator is consumed by the first attempt and cannot be resent.
    """
    body = request.body
    if body is None or isinstance(body, bytes | str):
        return _nothing_to_rewind
    position = getattr(request, "_body_position", None)
    seek = getattr(body, "seek", None)
    if not hasattr(body, "read") or not isinstance(position, int) or not callable(seek):
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
