"""httpx transports that retry Product API calls as the status table says, one span per attempt.

They wrap any transport (by default ``httpx.HTTPTransport()`` /
``httpx.AsyncHTTPTransport()``), enter, exit and close it with the client,
and run the planner's loop around it, the loop ``RetryingSession`` runs::

    client.get(...) -> Client.send -> RetryingTransport.handle_request
        Attempts(...)                                   (budget deposit)
        attempt 0: RESEND_COUNT=0 -> inner.handle_request
                                     (HTTPTransport, instrumented: a CLIENT span)
        retrier.after(...) -> wait, or stop             (otel_productapi.retry.planner)
            stop -> return the response / raise the exception, unchanged
            wait -> close the response, sleep(wait)     (await asyncio.sleep: the loop runs on)
        attempt 1: RESEND_COUNT=1 -> inner.handle_request (a sibling CLIENT span) ...

The retry sits below ``Client.send``, so a redirect hop, an auth round trip
or a streamed response is retried on its own, and the caller's
``client.stream(...)`` still gets the final response unread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

import httpx

from otel_productapi._adapters.httpx.transport import transport_failure_of
from otel_productapi.retry.planner import (
    REWIND_NOT_NEEDED,
    AsyncAttempts,
    AsyncSleep,
    Attempts,
    Retrier,
    RetryingClient,
    Rewind,
    SyncSleep,
)
from otel_productapi.retry.policy import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from otel_productapi.retry.planner import RetryOptions

__all__ = ["AsyncRetryingTransport", "RetryingTransport"]


def _rewinder(request: httpx.Request) -> Rewind | None:
    """``REWIND_NOT_NEEDED`` for a body held in memory, else ``None`` (never resent).

    httpx keeps ``content=`` bytes, ``json=`` and ``data=`` dicts, no body
    at all, and any body already read with ``request.read()`` as a
    ``ByteStream``, sent whole each time. An iterator or a multipart upload
    (``files=``) is consumed as it is sent, and nothing public says whether
    it can be sent again.
    """
    return REWIND_NOT_NEEDED if isinstance(request.stream, httpx.ByteStream) else None


T = TypeVar("T", httpx.BaseTransport, httpx.AsyncBaseTransport)
S = TypeVar("S", SyncSleep, AsyncSleep)


class _Retrying(RetryingClient, Generic[T, S]):
    """What both transports hold: a ``Retrier``, the wrapped transport, the sleep."""

    _default_transport: ClassVar[type[httpx.BaseTransport] | type[httpx.AsyncBaseTransport]]
    _default_sleep: ClassVar[Callable[..., object]]  # a staticmethod

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        transport: T | None = None,
        sleep: S | None = None,
        **options: Unpack[RetryOptions],
    ) -> None:
        """Build a transport.

        Args:
            policy: How to retry; ``RetryPolicy()`` (the API's advice) if ``None``.
            transport: The transport each attempt goes through;
                ``httpx.HTTPTransport()`` (``AsyncHTTPTransport()``) if
                ``None``. Pass your own to configure TLS, proxies or limits
                (its ``retries=`` retries connects below us, unseen).
            sleep: Waits between attempts: ``time.sleep`` (``asyncio.sleep``,
                awaited) if ``None``; tests pass a recorder.
            **options: ``budget``, ``settings``, ``meter_provider``, ``clock``,
                ``wall_clock``, ``rng``: see ``otel_productapi.retry.RetryOptions``.
        """
        self._retrier = Retrier(policy, **options)
        self._transport: T = transport if transport is not None else self._default_transport()  # type: ignore[assignment]
        self._sleep: S = sleep if sleep is not None else self._default_sleep  # type: ignore[assignment]

    def _attempts_args(self, request: httpx.Request) -> tuple[Retrier, str, str]:
        return self._retrier, request.method, str(request.url)


class RetryingTransport(_Retrying[httpx.BaseTransport, SyncSleep], httpx.BaseTransport):
    """An ``httpx`` transport that retries Product API calls, one span per attempt.

    ``httpx.Client(transport=RetryingTransport())``: the same decisions as
    ``RetryingSession`` (429, 5xx, and transport failures the table calls
    retryable: never a POST that may have reached the server), the same
    waits for ``X-RateLimit-Reset``/``Retry-After``, the same budget and
    counters. Each attempt goes through the wrapped transport, so with
    ``otel_productapi.instrument()`` (which instruments ``httpx.HTTPTransport``)
    each is its own CLIENT span with ``http.request.resend_count``.

    Example::

        transport = RetryingTransport(RetryPolicy(max_attempts=3))
        with httpx.Client(transport=transport, timeout=5) as client:
            client.get(url)
    """

    _default_transport = httpx.HTTPTransport
    _default_sleep = staticmethod(time.sleep)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, retrying as the policy and the status table say.

        Returns:
            The final response, unchanged (its stream unread).

        Raises:
            httpx.TransportError: The final attempt's exception, unchanged.
        """
        attempts = Attempts[httpx.Response](
            *self._attempts_args(request),
            rewind=_rewinder(request),
            failure_of=transport_failure_of,
            sleep=self._sleep,
        )
        for attempt in attempts:
            with attempt:
                attempt.answered(self._transport.handle_request(request))
        return attempts.response

    def __enter__(self) -> Self:
        """Enter the wrapped transport (``httpx.Client`` enters its transport)."""
        self._transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Exit the wrapped transport, which closes it."""
        self._transport.__exit__(exc_type, exc_value, traceback)

    def close(self) -> None:
        """Close the wrapped transport."""
        self._transport.close()


class AsyncRetryingTransport(
    _Retrying[httpx.AsyncBaseTransport, AsyncSleep], httpx.AsyncBaseTransport
):
    """``RetryingTransport`` for ``httpx.AsyncClient``; waits never block the event loop.

    Waits are awaited (``asyncio.sleep`` unless you pass ``sleep=``; under
    trio pass ``trio.sleep`` or ``anyio.sleep``).

    Example::

        transport = AsyncRetryingTransport(RetryPolicy(max_attempts=3))
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            await client.get(url)
    """

    _default_transport = httpx.AsyncHTTPTransport
    _default_sleep = staticmethod(asyncio.sleep)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, retrying as the policy and the status table say."""
        attempts = AsyncAttempts[httpx.Response](
            *self._attempts_args(request),
            rewind=_rewinder(request),
            failure_of=transport_failure_of,
            sleep=self._sleep,
        )
        async for attempt in attempts:
            with attempt:
                attempt.answered(await self._transport.handle_async_request(request))
        return attempts.response

    async def __aenter__(self) -> Self:
        """Enter the wrapped transport (``httpx.AsyncClient`` enters its transport)."""
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Exit the wrapped transport, which closes it."""
        await self._transport.__aexit__(exc_type, exc_value, traceback)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()
