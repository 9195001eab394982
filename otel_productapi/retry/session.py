"""``RetryingSession``: a ``requests.Session`` whose ``send`` retries as the status table says.

One call, as the caller sees it::

    session.get(...)  ->  Session.request  ->  RetryingSession.send
        Attempts(...)                            (budget deposit)
        attempt 0: RESEND_COUNT=0 -> Session.send (instrumented: CLIENT span)
        retrier.after(...) -> wait, or stop      (see otel_productapi.retry.planner)
            stop -> return the response / raise the exception, unchanged
            wait -> close the response, sleep(wait)
        attempt 1: RESEND_COUNT=1 -> Session.send (a sibling CLIENT span) ...

The loop is the planner's ``Attempts``, shared with the httpx transports.

Redirect hops that ``Session.send`` makes inside an attempt come back through
``send``; they pass straight through, so a chain of redirects is one attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import requests

from otel_productapi._adapters.requests.private import body_position
from otel_productapi._adapters.requests.transport import transport_failure_of
from otel_productapi.retry.planner import (
    REWIND_NOT_NEEDED,
    Attempts,
    Retrier,
    RetryingClient,
    Rewind,
)
from otel_productapi.retry.policy import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from otel_productapi.retry.planner import RetryOptions

__all__ = ["RetryingSession"]

# The session whose retry loop is running in this context: a send() that
# finds itself here is a redirect hop inside an attempt, not a new call.
_LOOPING: ContextVar[RetryingSession | None] = ContextVar(
    "otel_productapi_retry_loop", default=None
)


class RetryingSession(RetryingClient, requests.Session):
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
        sleep: Callable[[float], None] = time.sleep,
        **options: Unpack[RetryOptions],
    ) -> None:
        """Build a session.

        Args:
            policy: How to retry; ``RetryPolicy()`` (the API's advice) if ``None``.
            sleep: Waits between attempts; tests pass a recorder.
            **options: ``budget``, ``settings``, ``meter_provider``, ``clock``,
                ``wall_clock``, ``rng``: see ``otel_productapi.retry.RetryOptions``.
        """
        super().__init__()
        self._retrier = Retrier(policy, **options)
        self._sleep = sleep

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
            attempts = Attempts[requests.Response](
                self._retrier,
                request.method or "GET",
                request.url or "",
                rewind=_rewinder(request),
                failure_of=transport_failure_of,
                sleep=self._sleep,
            )
            for attempt in attempts:
                with attempt:
                    attempt.answered(super().send(request, **kwargs))
            return attempts.response
        finally:
            _LOOPING.reset(token)


def _rewinder(request: requests.PreparedRequest) -> Rewind | None:
    """How to make the body sendable again, or ``None`` if it cannot be.

    ``bytes``/``str`` bodies (and no body) are sent as they are each time. A
    file object is sought back to where ``requests`` found it. A generator
    or other iterator is consumed by the first attempt and cannot be resent.
    """
    body = request.body
    if body is None or isinstance(body, bytes | str):
        return REWIND_NOT_NEEDED
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
