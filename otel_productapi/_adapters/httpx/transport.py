"""How far a failed ``httpx`` call got, and the patch that reports it.

- ``transport_failure_of(exc)``: the httpx exception mapping, read by the
  hooks (to tag ``transport_error`` spans) and the retry transports (to
  decide whether to send again), so they cannot disagree.
- ``TRANSPORT_PATCH``: httpx raises instead of returning a response, and
  ``HTTPXClientInstrumentor`` calls no hook then; but inside
  ``HTTPTransport.handle_request`` the request hook has run, so a marked
  wrapper there finds the call (``_call_of``) and reports the failure. It must sit *inside* the
  instrumentation's wrapper: ``instrument()``, zero-code and ``make_httpx_hooks()``
  install it before the instrumentation wraps the method.

    httpx.RequestError
    ├── ConnectTimeout, PoolTimeout, ProxyError ....... not sent
    ├── ConnectError (refused, DNS, TLS handshake) .... not sent
    ├── ReadTimeout, WriteTimeout, ReadError,
    │   WriteError, CloseError, RemoteProtocolError ... after send
    ├── LocalProtocolError, UnsupportedProtocol ....... other
    └── anything else ................................. after send if a network error, else other

The same wrapper captures a small error body for ``productapi.error.message``
(see ``_reading_call``): only an error status whose ``Content-Length`` is declared
and small, not compressed, on a call that is not ``client.stream(...)``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import FunctionType
from typing import Any, Final

import httpx
from opentelemetry.trace import get_current_span

from otel_productapi._adapters.httpx.private import (
    BODY_HEADERS,
    picked_headers,
    streams_the_response,
    wanted,
)
from otel_productapi._core.headers import Headers
from otel_productapi._core.status import TransportFailure
from otel_productapi._telemetry.outcomes import reads_body
from otel_productapi._telemetry.tagger import Call, current_call

__all__ = [
    "MAX_CAPTURED_BODY",
    "PATCH_MARK",
    "TRANSPORT_PATCH",
    "plain_length",
    "transport_failure_of",
]

_NOT_SENT: Final = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError, httpx.ConnectError)
_AFTER_SEND: Final = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.CloseError,
    httpx.RemoteProtocolError,
)
_OTHER: Final = (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL)

#: Largest declared ``Content-Length`` of an error body read for its message.
MAX_CAPTURED_BODY: Final = 64 * 1024
#: Set on our wrappers of the transports' send methods.
PATCH_MARK: Final = "_otel_productapi_patched"
_PLAIN_ENCODINGS: Final = frozenset({"", "identity"})


def transport_failure_of(exc: BaseException) -> TransportFailure:
    """Say whether ``exc`` (raised instead of a response) may have reached the server.

    When in doubt, "after send": a retry must not resend a POST the server
    may have applied.
    """
    if isinstance(exc, _NOT_SENT):
        return TransportFailure.NOT_SENT
    if isinstance(exc, _AFTER_SEND):
        return TransportFailure.AFTER_SEND
    if isinstance(exc, _OTHER):
        return TransportFailure.OTHER
    if isinstance(exc, httpx.TransportError | OSError):
        return TransportFailure.AFTER_SEND
    return TransportFailure.OTHER


def _call_of(request: httpx.Request) -> Call | None:
    """The call this transport is sending ``request`` for, not yet counted, or ``None``.

    The request hook keeps the request's ``extensions`` dict as the call's
    origin (the instrumentation hands the hook that very dict; it replaces
    ``request.headers`` to inject its own): one identity check, where asking
    whether the call's span is current would cost a context look-up. That
    look-up is left for a request of another origin: a transport below the
    span (``OpenTelemetryTransport``, ``instrument_client``) may send a new
    ``httpx.Request`` of its own making for the call.
    """
    call = current_call()
    if call is None or call.done:
        return None
    if call.origin is request.extensions or call.span is get_current_span():
        return call
    return None


def plain_length(headers: Headers) -> int | None:
    """The declared ``Content-Length`` of a body sent as it is, or ``None``.

    ``None`` when the length is absent, repeated (httpx joins repeats with
    ``", "``) or not plain digits, or when a ``Content-Encoding`` other than
    ``identity`` is declared.
    """
    encoding = headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in _PLAIN_ENCODINGS:
        return None
    length = headers.get("content-length")
    if length is None or not (length.isdigit() and length.isascii()):
        return None
    return int(length)


def _reading_call(response: httpx.Response, request: httpx.Request) -> Call | None:
    """The call whose body to read now, or ``None``; never raises.

    Asked only of an error or 202 status (``reads_body``). Only a small,
    plain body that the caller reads anyway: a declared ``Content-Length`` of at most
    ``min(max_body_bytes, MAX_CAPTURED_BODY)``, no ``Content-Encoding``, on a
    Product API call whose ``Client.send`` was not asked for a stream.
    """
    try:
        call = _call_of(request)
        if call is None:
            return None
        # Picked once, with the tagger's: the response hook reuses them for this
        # response only (a retry below the span sends again for the same call).
        call.read_of = response.headers
        call.body = None
        names = wanted(call.tagger.body_header_names + BODY_HEADERS)
        call.headers = headers = picked_headers(response.headers, names)
        length = plain_length(headers)
        if length is None or length > min(call.tagger.max_body_bytes, MAX_CAPTURED_BODY):
            return None
        # client.stream(...) must get its body as a stream, when it wants it.
        # (Above us: the transport patch's wrapper.)
        return None if streams_the_response(request, above=1) else call
    except Exception:  # noqa: BLE001 - telemetry must never break the call
        return None


class _Replay(httpx.SyncByteStream, httpx.AsyncByteStream):
    """What a read that failed got: its chunks, then the error that cut it short."""

    def __init__(self, chunks: list[bytes], error: Exception) -> None:
        self._chunks = chunks
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        raise self._error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        raise self._error


def _read_ahead(response: httpx.Response, call: Call) -> httpx.Response:
    """The same response, its body read from the transport's own stream into memory.

    The caller reads it from a ``httpx.ByteStream`` as it would have from the
    network (``client.get`` reads it at once). A read that failed (a
    truncated body, a read timeout) gives the tagger no body, and replays the
    failure to the caller when ``Client.send`` reads the body, where it would
    have happened without us: the span still ends with the response, and the
    call is counted by status.
    """
    stream = response.stream
    chunks: list[bytes] = []
    try:
        for chunk in stream:  # type: ignore[union-attr]  # a transport's own: sync
            chunks.append(chunk)  # keep what arrived if the read fails
        stream.close()  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - replayed to the caller
        with contextlib.suppress(Exception):
            stream.close()  # type: ignore[union-attr]
        response.stream = _Replay(chunks, exc)
        return response
    call.body = body = b"".join(chunks)
    response.stream = httpx.ByteStream(body)
    return response


async def _aread_ahead(response: httpx.Response, call: Call) -> httpx.Response:
    """``_read_ahead`` for ``AsyncHTTPTransport``."""
    stream = response.stream
    chunks: list[bytes] = []
    try:
        async for chunk in stream:  # type: ignore[union-attr]  # a transport's own: async
            chunks.append(chunk)  # keep what arrived if the read fails
        await stream.aclose()  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - replayed to the caller
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[union-attr]
        response.stream = _Replay(chunks, exc)
        return response
    call.body = body = b"".join(chunks)
    response.stream = httpx.ByteStream(body)
    return response


_METHODS: Final = (
    (httpx.HTTPTransport, "handle_request"),
    (httpx.AsyncHTTPTransport, "handle_async_request"),
)


def _is_proxy(obj: object) -> bool:
    """A wrapper object (wrapt's, as the instrumentations use) that calls its ``__wrapped__``.

    ``type()``, not ``isinstance``: a wrapt proxy claims its wrapped function's class.
    """
    return type(obj) is not FunctionType and hasattr(obj, "__wrapped__")


class TransportPatch:
    """Our wrappers of ``HTTPTransport.handle_request`` and its async twin.

    Counted users, removed with the last one and only while still in place
    (compared by identity), as for the requests adapter. If an
    instrumentation's wrapper is in place already (``make_httpx_hooks()``
    called after ``HTTPXClientInstrumentor().instrument()``), ours goes
    inside it, by its ``__wrapped__``: outside, it would call that wrapper
    unbound, the span would not be current, and ``uninstrument()`` could no
    longer unwrap it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._installed: dict[type, Callable[..., Any]] = {}

    def acquire(self) -> None:
        """Install the wrappers if they are not in place; count one more user."""
        with self._lock:
            self._users += 1
            wraps: tuple[Callable[[Any], Callable[..., Any]], ...] = (
                self._wrap_sync,
                self._wrap_async,
            )
            for (cls, name), wrap in zip(_METHODS, wraps, strict=True):
                current = cls.__dict__[name]
                if getattr(current, PATCH_MARK, False):
                    continue  # ours, or a wrapper around ours
                holder: Any = None
                while _is_proxy(current):
                    holder, current = current, current.__wrapped__
                ours = wrap(current)
                try:
                    if holder is None:
                        setattr(cls, name, ours)
                    else:
                        holder.__wrapped__ = ours
                except (AttributeError, TypeError):  # a wrapper we cannot reach into
                    continue
                self._installed[cls] = ours

    def release(self) -> None:
        """Count one user less; remove the wrappers with the last one, if still ours."""
        with self._lock:
            self._users = max(self._users - 1, 0)
            if self._users:
                return
            for cls, name in _METHODS:
                ours = self._installed.pop(cls, None)
                if ours is None:
                    continue
                if cls.__dict__[name] is ours:
                    setattr(cls, name, ours.__wrapped__)
                    continue
                # Inside an instrumentation's wrapper: leave from there.
                holder: Any = cls.__dict__[name]
                while _is_proxy(holder) and holder.__wrapped__ is not ours:
                    holder = holder.__wrapped__
                if _is_proxy(holder):
                    with contextlib.suppress(AttributeError, TypeError):
                        holder.__wrapped__ = ours.__wrapped__  # type: ignore[attr-defined]

    @property
    def users(self) -> int:
        """How many users hold the patch now."""
        with self._lock:
            return self._users

    @property
    def installed(self) -> bool:
        """True while our wrapper is ``HTTPTransport.handle_request``."""
        current = httpx.HTTPTransport.__dict__["handle_request"]
        return getattr(current, PATCH_MARK, False) is True

    def _wrap_sync(
        self, original: Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response]
    ) -> Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response]:
        @functools.wraps(original)
        def handle_request(
            transport: httpx.HTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            try:
                response = original(transport, request)
            except Exception as exc:
                _report_failure(exc, request)
                raise
            try:
                call = (
                    _reading_call(response, request) if reads_body(response.status_code) else None
                )
            except Exception:  # noqa: BLE001 - telemetry must never break the call
                return response
            return response if call is None else _read_ahead(response, call)

        setattr(handle_request, PATCH_MARK, True)
        return handle_request

    def _wrap_async(
        self,
        original: Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]],
    ) -> Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]]:
        @functools.wraps(original)
        async def handle_async_request(
            transport: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            try:
                response = await original(transport, request)
            except Exception as exc:
                _report_failure(exc, request)
                raise
            try:
                call = (
                    _reading_call(response, request) if reads_body(response.status_code) else None
                )
            except Exception:  # noqa: BLE001 - telemetry must never break the call
                return response
            return response if call is None else await _aread_ahead(response, call)

        setattr(handle_async_request, PATCH_MARK, True)
        return handle_async_request


def _report_failure(exc: BaseException, request: httpx.Request) -> None:
    call = _call_of(request)
    if call is not None:
        call.tagger.on_failure(call, transport_failure_of(exc))


#: The one patch of this process (the transport classes are one per process too).
TRANSPORT_PATCH: Final = TransportPatch()
